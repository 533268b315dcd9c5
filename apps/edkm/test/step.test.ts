import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import '@edkm/backend-webgpu';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededRandom, tf, useBackend } from '@edkm/core';
import { testBackends } from '@edkm/core/testing';
import { Palettizer } from '@edkm/dkm';
import { defaultModelDir, loadLlama, makeRandomLlama } from '@edkm/llama';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AdamW,
  type TrainBatch,
  TrainStep,
  defaultPalettizeConfig,
  learningRate,
} from '../src/index';

const root = mkdtempSync(join(tmpdir(), 'edkm-step-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const dir = join(root, 'm');
makeRandomLlama(dir, {
  preset: 'llama-3-8b',
  layers: 2,
  hidden: 32,
  intermediate: 48,
  heads: 4,
  kvHeads: 2,
  vocab: 4100,
  seed: 5,
  tokenizerFrom: defaultModelDir(),
});

/**
 * Batch s of 2×12 tokens; step 3's second row ignores its first labels (−100). `masked`: as the
 * Alpaca loader makes them — even batches right-padded (attention mask, labels −100 on padding),
 * odd ones packed (two segments per row, positions restarting at each).
 */
function batchAt(s: number, masked = false): TrainBatch {
  const rnd = seededRandom(50 + s);
  const inputIds = Array.from({ length: 2 }, () =>
    Array.from({ length: 12 }, () => Math.floor(rnd() * 4100)),
  );
  const labels = inputIds.map((r, b) => r.map((y, t) => (s === 3 && b === 1 && t < 5 ? -100 : y)));
  if (!masked) return { inputIds, labels, tokens: 24 };
  if (s % 2 === 0) {
    const real = [12 - (s % 5), 7 + (s % 3)];
    const attentionMask = real.map((n) => Array.from({ length: 12 }, (_, t) => (t < n ? 1 : 0)));
    const padded = labels.map((r, b) => r.map((y, t) => (t < real[b] ? y : -100)));
    return { inputIds, labels: padded, attentionMask, tokens: real[0] + real[1] };
  }
  const cut = [4 + (s % 4), 6];
  const segmentIds = cut.map((c) => Array.from({ length: 12 }, (_, t) => (t < c ? 1 : 2)));
  const positionIds = cut.map((c) => Array.from({ length: 12 }, (_, t) => (t < c ? t : t - c)));
  return { inputIds, labels, segmentIds, positionIds, tokens: 24 };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/**
 * Five steps (two micro-batches each) with or without the recorded graph; `bits`: the decoder
 * linears palettized by eDKM (prepared on the device in the recorded steps).
 */
async function train(graph: boolean, bits?: number, masked = false) {
  const { model } = loadLlama(dir);
  const weights = model.getWeights();
  const optimizer = new AdamW({ weightDecay: 0.1 });
  const palettizer =
    bits === undefined
      ? undefined
      : new Palettizer(
          new Map(
            model.linearWeightNames().map((n) => [n, weights.get(n)!.shape as [number, number]]),
          ),
          defaultPalettizeConfig(bits),
        );
  if (palettizer) model.setLinear(palettizer.linear);
  const stepper = new TrainStep(model, weights, optimizer, { clip: 0.5, graph, palettizer });
  const losses: number[] = [];
  const norms: number[] = [];
  for (let s = 0; s < 5; s++) {
    const lr = learningRate(s, { lr: 1e-2, warmupSteps: 2, totalSteps: 5 });
    const out = await stepper.run([batchAt(2 * s, masked), batchAt(2 * s + 1, masked)], lr);
    for (const l of out.losses) losses.push((await l.data())[0]);
    norms.push((await out.clip.data())[0]);
    tf.dispose([...out.losses, out.clip]);
  }
  const final = new Map<string, Float32Array>();
  for (const [name, w] of weights) final.set(name, Float32Array.from(await w.data()));
  const { replays, recorded } = stepper;
  stepper.dispose();
  model.setLinear(null);
  palettizer?.dispose();
  optimizer.dispose();
  model.dispose();
  return { losses, norms, final, replays, recorded };
}

describe.each(await testBackends())('TrainStep on %s', (backend) => {
  it.each([
    ['plain causal batches', false],
    ['padded and packed batches (masks, segments, positions as device tensors)', true],
  ])('replayed steps equal op-by-op steps: %s', async (_, masked) => {
    await useBackend(backend);
    const before = tf.memory().numTensors;
    const eager = await train(false, undefined, masked);
    const replayed = await train(true, undefined, masked);
    expect(tf.memory().numTensors).toBe(before);
    // webgpu records the second step and replays the last three; cpu and wasm cannot record
    expect(replayed.recorded).toBe(backend === 'webgpu');
    expect(replayed.replays).toBe(backend === 'webgpu' ? 3 : 0);
    expect(eager.replays).toBe(0);
    // the losses move (the weights are trained), and both paths agree
    expect(new Set(eager.losses.map((l) => l.toFixed(4))).size).toBeGreaterThan(5);
    replayed.losses.forEach((l, i) => expect(l).toBeCloseTo(eager.losses[i], 4));
    // tfjs-webgpu's embedding gradient adds with float atomics (run-to-run rounding): the norms
    // agree to float32 rounding, and AdamW turns it into ≤ 1% of one lr step on weights whose
    // gradient is near 0
    replayed.norms.forEach((n, i) => expect(Math.abs(n - eager.norms[i]) / n).toBeLessThan(2e-4));
    for (const [name, w] of eager.final)
      expect(maxAbsDiff(w, replayed.final.get(name)!), name).toBeLessThan(1e-4);
  });

  it('a batch of another shape or kind turns the graph off and runs op by op', async () => {
    await useBackend(backend);
    const before = tf.memory().numTensors;
    const { model } = loadLlama(dir);
    const weights = model.getWeights();
    const optimizer = new AdamW();
    const logs: string[] = [];
    const stepper = new TrainStep(model, weights, optimizer, {
      clip: 1,
      log: (l) => logs.push(l),
    });
    for (let s = 0; s < 3; s++)
      tf.dispose(Object.values(await stepper.run([batchAt(s)], 1e-3)).flat());
    const out = await stepper.run([batchAt(4, true)], 1e-3);
    expect(Number.isFinite((await out.losses[0].data())[0])).toBe(true);
    tf.dispose([...out.losses, out.clip]);
    expect(stepper.recorded).toBe(false);
    if (backend === 'webgpu') expect(logs.join('\n')).toMatch(/step graph: off \(the batch shape/);
    stepper.dispose();
    optimizer.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  }, 300_000);

  // only webgpu records (cpu and wasm would run the same op-by-op steps twice, slowly)
  it.skipIf(backend !== 'webgpu')(
    'eDKM 3-bit: replayed steps, each preparing the tables on the device, follow op-by-op steps',
    async () => {
      await useBackend(backend);
      const before = tf.memory().numTensors;
      const eager = await train(false, 3);
      const replayed = await train(true, 3);
      expect(tf.memory().numTensors).toBe(before);
      expect(replayed.replays).toBe(3);
      // the recorded steps' tables cover all 65,536 codes (absent ones weigh 0), the op-by-op
      // steps' the present codes: the same math up to float32 rounding (relative, as the loss
      // sums thousands of float32 terms: an absolute 1e-4 failed once at 1.0013e-4 on a loss ~8.3 = ln 4100)
      replayed.losses.forEach((l, i) =>
        expect(Math.abs(l - eager.losses[i]) / Math.abs(eager.losses[i])).toBeLessThan(1e-4),
      );
      replayed.norms.forEach((n, i) => expect(Math.abs(n - eager.norms[i]) / n).toBeLessThan(1e-3));
      // AdamW's step is ~lr per weight whatever the gradient's size: a rounding-level gradient
      // difference can move a weight whose gradient is near 0 by up to ~lr in a step
      for (const [name, w] of eager.final)
        expect(maxAbsDiff(w, replayed.final.get(name)!), name).toBeLessThan(2e-2);
    },
    300_000,
  );
});
