import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import '@edkm/backend-webgpu';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf, useBackend } from '@edkm/core';
import { testBackends } from '@edkm/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadedLlama, defaultModelDir, generate, loadLlama } from '../src/index';

const dir = defaultModelDir();
const reference = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as {
  prompts: {
    prompt: string;
    input_ids: number[];
    last_logits: number[];
    greedy_ids: number[];
    greedy_text: string;
  }[];
};
const backends = await testBackends();

describe('tokenizer', () => {
  it('encodes the reference prompts to the reference ids (BOS first) and decodes them back', () => {
    const { tokenizer } = loadLlama(dir);
    for (const p of reference.prompts) {
      expect(tokenizer.encode(p.prompt)).toEqual(p.input_ids);
      expect(tokenizer.decode(p.input_ids)).toBe(p.prompt);
    }
    expect(tokenizer.bosId).toBe(1);
    expect(tokenizer.eosId).toBe(2);
  });
});

describe('memory', () => {
  it('load + dispose leaves no tensor and no byte behind', async () => {
    await useBackend('cpu');
    const before = tf.memory();
    const { model } = loadLlama(dir);
    expect(tf.memory().numBytes).toBeGreaterThan(before.numBytes + 7_000_000 * 4);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numBytes).toBe(before.numBytes);
  });
});

describe.each(backends)('LLaMA on %s', (backend) => {
  let llama: LoadedLlama;
  beforeAll(async () => {
    await useBackend(backend);
    llama = loadLlama(dir);
  });
  afterAll(() => llama.model.dispose());

  it('last-position logits match transformers within 1e-2', async () => {
    for (const p of reference.prompts) {
      const logits = llama.model.forward([p.input_ids]);
      const T = p.input_ids.length;
      const last = (await logits.slice([0, T - 1, 0], [1, 1, -1]).data()) as Float32Array;
      logits.dispose();
      let worst = 0;
      for (let i = 0; i < last.length; i++)
        worst = Math.max(worst, Math.abs(last[i] - p.last_logits[i]));
      expect(worst).toBeLessThan(1e-2);
    }
  });

  it('greedy generation matches transformers token for token (KV cache)', async () => {
    const prompts = backend === 'cpu' ? reference.prompts : reference.prompts.slice(0, 1);
    for (const p of prompts) {
      const n = backend === 'cpu' ? p.greedy_ids.length - p.input_ids.length : 10; // lavapipe is slow: first 10
      const before = tf.memory().numTensors;
      const ids = await generate(llama.model, p.input_ids, { maxNewTokens: n, eosIds: [] });
      expect(ids).toEqual(p.greedy_ids.slice(p.input_ids.length, p.input_ids.length + n)); // reference = prompt + new
      expect(tf.memory().numTensors).toBe(before);
    }
  });
});

describe('training loss', () => {
  let llama: LoadedLlama;
  beforeAll(async () => {
    await useBackend('cpu');
    llama = loadLlama(dir);
  });
  afterAll(() => llama.model.dispose());

  it('equals a manual masked cross-entropy and ignores -100 labels', async () => {
    const text = readFileSync(join(dir, '../../data/tinyshakespeare/input.txt'), 'utf8').slice(
      0,
      200,
    );
    const ids = llama.tokenizer.encode(text).slice(0, 24);
    const labels = ids.map((id, t) => (t < 6 ? -100 : id));
    const loss = (await llama.model.loss([ids], [labels]).data())[0];
    const logits = llama.model.forward([ids]);
    const logp = (await tf.logSoftmax(logits).data()) as Float32Array;
    const V = llama.config.vocabSize;
    let total = 0;
    let n = 0;
    for (let t = 1; t < ids.length; t++) {
      if (labels[t] === -100) continue;
      total -= logp[(t - 1) * V + labels[t]];
      n++;
    }
    expect(loss).toBeCloseTo(total / n, 4);
    expect(loss).toBeGreaterThan(0.5);
  });

  it('its gradient matches central finite differences, and passes through the weight transform', async () => {
    const ids = [llama.tokenizer.encode('To be, or not to be').slice(0, 8)];
    const name = 'model.layers.2.mlp.down_proj.weight';
    const w = llama.model.getWeights().get(name)!;
    const { grads } = tf.variableGrads(() => llama.model.loss(ids, ids), [w]);
    const g = (await grads[w.name].data()) as Float32Array;
    const base = (await w.data()) as Float32Array;
    const h = 1e-2;
    for (const i of [0, 1234, 100000]) {
      const at = (delta: number) => {
        const copy = Float32Array.from(base);
        copy[i] += delta;
        llama.model.setWeight(name, tf.tensor(copy, w.shape));
        return llama.model.loss(ids, ids).dataSync()[0];
      };
      const fd = (at(h) - at(-h)) / (2 * h);
      expect(Math.abs(fd - g[i])).toBeLessThan(2e-3 + 0.05 * Math.abs(fd));
    }
    llama.model.setWeight(name, tf.tensor(base, w.shape));
    // an identity transform changes nothing; one that zeroes a weight cuts its gradient
    const lossPlain = llama.model.loss(ids, ids).dataSync()[0];
    llama.model.setWeightTransform((n, x) => x);
    expect(llama.model.loss(ids, ids).dataSync()[0]).toBeCloseTo(lossPlain, 6);
    llama.model.setWeightTransform((n, x) => (n === name ? x.mul(0) : x));
    const zeroed = tf.variableGrads(() => llama.model.loss(ids, ids), [w]);
    expect((await zeroed.grads[w.name].abs().max().data())[0]).toBe(0);
    // a linear hook takes precedence over the transform, and x·Wᵀ through it is the plain model
    const seen = new Set<string>();
    llama.model.setLinear((n, x, weight) => {
      seen.add(n);
      return tf.matMul(x, weight, false, true);
    });
    expect(llama.model.loss(ids, ids).dataSync()[0]).toBeCloseTo(lossPlain, 6);
    expect(seen.has(name)).toBe(true);
    llama.model.setLinear(null);
    llama.model.setWeightTransform(null);
  });

  it('a few Adam steps on one batch reduce the loss', async () => {
    const ids = [llama.tokenizer.encode('Now is the winter of our discontent').slice(0, 8)];
    const opt = tf.train.adam(1e-2);
    const first = llama.model.loss(ids, ids).dataSync()[0];
    for (let i = 0; i < 5; i++)
      opt.minimize(() => llama.model.loss(ids, ids), false, llama.model.trainableVariables);
    expect(llama.model.loss(ids, ids).dataSync()[0]).toBeLessThan(first * 0.85);
  });
});
