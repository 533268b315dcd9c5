import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resetWebGPUHostStats, webgpuHostStats } from '@edkm/backend-webgpu';
import { tf, useBackend } from '@edkm/core';
import { testBackends } from '@edkm/core/testing';
import { describe, expect, it } from 'vitest';
import {
  Decoder,
  DeviceSampler,
  defaultModelDir,
  generate,
  loadLlama,
  readLlamaFolder,
  safetensorsSource,
  sampleToken,
} from '../src/index';

const dir = defaultModelDir();
const reference = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as {
  prompts: { input_ids: number[]; greedy_ids: number[] }[];
};
const backends = await testBackends();

describe.each(backends)('Decoder on %s', (backend) => {
  it('greedy tokens equal the reference and the tf.concat-cache path; batch rows equal single runs', async () => {
    await useBackend(backend);
    const { model, config } = loadLlama(dir);
    const source = safetensorsSource(dir);
    const decoder = new Decoder(config, source, { maxLength: 96 });
    const before = tf.memory().numTensors;
    // lavapipe is slow: fewer tokens, and the tf.concat-cache path only on cpu
    const n = backend === 'cpu' ? 12 : 4;
    const prompts = reference.prompts.slice(0, 2);
    const expected = prompts.map((p) =>
      p.greedy_ids.slice(p.input_ids.length, p.input_ids.length + n),
    );
    for (const [i, p] of prompts.entries()) {
      if (backend !== 'cpu' && i > 0) break;
      const [ids] = await decoder.generate([p.input_ids], { maxNewTokens: n, eosIds: [] });
      expect(ids).toEqual(expected[i]);
      if (backend === 'cpu')
        expect(ids).toEqual(await generate(model, p.input_ids, { maxNewTokens: n, eosIds: [] }));
    }
    expect(tf.memory().numTensors).toBe(before); // nothing per token stays behind
    // two prompts of different lengths, left-padded into one batch
    const two = new Decoder(config, source, { maxLength: 96, batch: 2 });
    const rows = await two.generate(
      prompts.map((p) => p.input_ids),
      { maxNewTokens: n, eosIds: [] },
    );
    expect(rows).toEqual(expected);
    expect(decoder.memory().weights).toBeLessThan(16_000_000);
    decoder.dispose();
    two.dispose();
    source.close();
    model.dispose();
  }, 300_000);
});

describe.each(backends)('Decoder step replay on %s', (backend) => {
  it('replayed steps (captureGraph) give the tokens of the op-by-op path, greedy and sampled', async () => {
    await useBackend(backend);
    const { config } = readLlamaFolder(dir);
    const source = safetensorsSource(dir);
    const decoder = new Decoder(config, source, { maxLength: 64 });
    const prompt = reference.prompts[0].input_ids;
    const n = backend === 'cpu' ? 10 : 6;
    const before = tf.memory().numTensors;
    for (const opts of [{}, { temperature: 0.9, topK: 20, seed: 11 }]) {
      const plain = await decoder.generate([prompt], {
        ...opts,
        maxNewTokens: n,
        eosIds: [],
        graph: false,
      });
      resetWebGPUHostStats();
      const replayed = await decoder.generate([prompt], { ...opts, maxNewTokens: n, eosIds: [] });
      expect(replayed).toEqual(plain);
      // WebGPU records the first one-token step and replays the other n - 2; cpu and wasm cannot
      const replays = webgpuHostStats().replays;
      if (backend === 'webgpu') expect(replays).toBe(n - 2);
      else expect(replays).toBe(0);
    }
    expect(tf.memory().numTensors).toBe(before);
    decoder.dispose();
    source.close();
  }, 300_000);
});

describe('DeviceSampler', () => {
  it('draws what sampleToken draws (temperature, top-k, top-p, repetition penalty)', async () => {
    await useBackend('cpu');
    const V = 50;
    const logits = Float32Array.from({ length: V }, (_, i) => Math.sin(i * 1.7) * 3);
    for (const opts of [
      { temperature: 0.8, seed: 3 },
      { temperature: 1.2, topK: 7, seed: 4 },
      { temperature: 1, topP: 0.6, seed: 5 },
      { temperature: 0.7, topK: 20, topP: 0.9, repetitionPenalty: 1.3, seed: 6 },
      { repetitionPenalty: 1.5 },
    ]) {
      const seen = [3, 9, 9, 17];
      const sampler = new DeviceSampler(V, 1, opts);
      sampler.seen(0, seen);
      const random = (await import('@edkm/core')).seededRandom(opts.seed ?? 0);
      const t = tf.tensor2d(logits, [1, V]);
      const expected: number[] = [];
      const actual: number[] = [];
      const history = [...seen];
      for (let i = 0; i < 5; i++) {
        const id = sampleToken(Float32Array.from(logits), history, opts, random);
        expected.push(id);
        history.push(id);
        const tokens = sampler.sample(t);
        actual.push((await tokens.data())[0]);
        tokens.dispose();
      }
      expect(actual).toEqual(expected);
      sampler.dispose();
      t.dispose();
    }
  });
});
