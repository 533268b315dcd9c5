// Per-step cost of JLCM's prepare on the shipped model's decoder linears (the LM head stays
// 16-bit): the first prepare (grouping and initial fit, once) and then `--iters` steady-state
// prepares after a small update of every weight (what a fine-tuning step pays).
// Usage: tsx jlcm-prepare.ts [--backend cpu|wasm|webgpu] [--bits 2] [--codebooks 4] [--iters 5]
import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import '@edkm/backend-webgpu';
import { tf, useBackend } from '@edkm/core';
import { Palettizer } from '@edkm/dkm';
import '@edkm/jlcm';
import { defaultModelDir, loadLlama } from '@edkm/llama';
import { argNumber, argValue, printJson } from './util';

const bits = argNumber('bits', 2);
const codebooks = argNumber('codebooks', 4);
const iters = argNumber('iters', 5);
await useBackend(argValue('backend') ?? 'cpu');
const { model } = loadLlama(defaultModelDir());
const weights = model.getWeights();
const linear = model.linearWeightNames().filter((n) => n !== 'lm_head.weight');
const shapes = new Map(linear.map((n) => [n, weights.get(n)!.shape as [number, number]]));
const palettizer = new Palettizer(shapes, { global: { method: 'jlcm', bits, codebooks } });
/** A read of a device tensor made now: waits until the device queue (in order) has finished. */
const sync = async () => {
  const probe = tf.tidy(() => model.getWeights().get(linear[0])!.slice([0, 0], [1, 1]).add(1));
  await probe.data();
  probe.dispose();
};
const current = () => new Map(linear.map((n) => [n, model.getWeights().get(n)!]));
let t0 = performance.now();
await palettizer.prepare(current());
const firstMs = performance.now() - t0;
const ms: number[] = [];
for (let i = 0; i < iters; i++) {
  // a small update of every weight and codebook (as an optimizer step would make)
  for (const n of linear)
    tf.tidy(() => {
      const w = model.getWeights().get(n)!;
      model.setWeight(n, w.add(tf.randomNormal(w.shape, 0, 1e-4, 'float32', i)));
    });
  for (const v of palettizer.variables()) tf.tidy(() => v.assign(v.mul(1.0001)));
  await sync(); // the update finished before the clock starts
  t0 = performance.now();
  await palettizer.prepare(current());
  // prepare() may return with the mapping still queued on a device: wait for it
  await sync();
  ms.push(performance.now() - t0);
}
ms.sort((a, b) => a - b);
const weightsTotal = linear.reduce((s, n) => s + shapes.get(n)!.reduce((a, b) => a * b), 0);
printJson({
  bench: 'jlcm-prepare',
  backend: tf.getBackend(),
  layers: linear.length,
  weights: weightsTotal,
  bits,
  codebooks,
  firstPrepareMs: Math.round(firstMs),
  prepareMs: ms.map((x) => Math.round(x)),
  medianPrepareMs: Math.round(ms[Math.floor(ms.length / 2)]),
  nsPerWeight: +((ms[Math.floor(ms.length / 2)] * 1e6) / weightsTotal).toFixed(1),
  loadavg: (await import('node:os')).loadavg().map((x) => +x.toFixed(1)),
});
