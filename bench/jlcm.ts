// DKM (one LUT per tensor, and one LUT per few rows at JLCM's bits per weight) against JLCM
// (grouped neurons, several codebooks, per-row scales) on the shipped model, at 2 and 3 bits:
// perplexity and next-line accuracy post-training and after a short fine-tune with one recipe.
// Usage: tsx jlcm.ts [--bits 2,3] [--codebooks 4] [--steps 3] [--batch 2] [--seq 64] [--lr 5e-4]
//        [--ppl-chars 2000] [--mc 8] [--methods dkm,dkm-grouped,jlcm] [--finetune dkm,jlcm]
//        [--backend cpu|webgpu]
// dkm-grouped (a LUT per few rows) fine-tunes slowly on a CPU (one DKM per group): add it to
// --finetune on a GPU.
import '@edkm/backend-cpu';
import '@edkm/backend-webgpu';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type PaletteTensor, dequantize, paletteBytes } from '@edkm/codec';
import { tf, useBackend } from '@edkm/core';
import { Palettizer, type PalettizerConfig } from '@edkm/dkm';
import { evaluate, fromLlama, perplexity } from '@edkm/eval';
import { defaultModelDir, loadLlama } from '@edkm/llama';
// bench/package.json does not list @edkm/jlcm yet: its build, by path (registers method 'jlcm')
import '@edkm/jlcm';
import { argNumber, argValue, printJson } from './util';

const bitsList = (argValue('bits') ?? '2,3').split(',').map(Number);
const codebooks = argNumber('codebooks', 4);
const steps = argNumber('steps', 3);
const batch = argNumber('batch', 2);
const seq = argNumber('seq', 64);
const lr = argNumber('lr', 5e-4);
const pplChars = argNumber('ppl-chars', 2000);
const mcLimit = argNumber('mc', 8);
const methods = (argValue('methods') ?? 'dkm,dkm-grouped,jlcm').split(',');
const fineTuned = (argValue('finetune') ?? 'dkm,jlcm').split(',');
const log = (s: string) => process.stderr.write(`${s}\n`);

const selection = await useBackend(argValue('backend') ?? 'cpu');
const modelDir = defaultModelDir();
const repo = join(modelDir, '..', '..');
const llama = loadLlama(modelDir);
const { model, tokenizer } = llama;
const scoring = fromLlama(llama, { maxLength: 256 });
const valText = readFileSync(join(repo, 'data', 'eval', 'shakespeare-val.txt'), 'utf8').slice(
  0,
  pplChars,
);
const trainTokens = tokenizer.encode(
  readFileSync(join(repo, 'data', 'tinyshakespeare', 'input.txt'), 'utf8').slice(0, -20000),
);

const weights = model.getWeights();
const linear = model.linearWeightNames().filter((n) => n !== 'lm_head.weight'); // LM head stays 16-bit
const shapes = new Map(linear.map((n) => [n, weights.get(n)!.shape as [number, number]]));
const original = new Map(
  [...weights].map(([n, w]) => [n, Float32Array.from(w.dataSync() as Float32Array)]),
);
const restore = () => {
  for (const [n, data] of original)
    tf.tidy(() => model.setWeight(n, tf.tensor(data, weights.get(n)!.shape)));
};

async function evaluateNow() {
  const t0 = performance.now();
  const ppl = await perplexity(scoring, valText, { window: 256, stride: 128 });
  const mc = (await evaluate({
    model: scoring,
    task: 'multiple_choice',
    dataPath: join(repo, 'data', 'eval', 'shakespeare-next-line.jsonl'),
    limit: mcLimit,
  })) as { acc: number; acc_norm: number };
  return {
    ppl: ppl.ppl,
    scoredTokens: ppl.scoredTokens,
    nextLineAcc: mc.acc,
    nextLineAccNorm: mc.acc_norm,
    evalSeconds: (performance.now() - t0) / 1000,
  };
}

/** Bits per palettized weight: indices, LUTs, scales and permutations. */
function bitsPerWeight(palettes: Map<string, PaletteTensor>): number {
  let bytes = 0;
  let count = 0;
  for (const p of palettes.values()) {
    bytes += paletteBytes(p).total;
    count += p.shape[0] * p.shape[1];
  }
  return (8 * bytes) / count;
}

/** Bytes of a JLCM palette of this shape: indices, fp16 LUTs, fp16 scales, ⌈log2 rows⌉-bit permutation. */
function jlcmBytes([rows, cols]: [number, number], bits: number): number {
  return (
    Math.ceil((rows * cols * bits) / 8) +
    2 * codebooks * 2 ** bits +
    2 * rows +
    Math.ceil((rows * Math.ceil(Math.log2(rows))) / 8)
  );
}

/** The most DKM LUTs (a divisor of rows per LUT) whose palette is not larger than JLCM's. */
function matchedGroupSize([rows, cols]: [number, number], bits: number): number {
  const budget = jlcmBytes([rows, cols], bits);
  for (let size = 1; size <= rows; size++)
    if (
      rows % size === 0 &&
      Math.ceil((rows * cols * bits) / 8) + (2 * rows * 2 ** bits) / size <= budget
    )
      return size;
  return rows;
}

function configFor(
  method: string,
  bits: number,
  phase: 'post-training' | 'fine-tune',
): PalettizerConfig {
  // DKM post-training is k-means (a vanishing temperature); fine-tuning is the demo's soft DKM
  const dkm = phase === 'post-training' ? { bits, maxIters: 20, tau: 1e-9 } : { bits, maxIters: 5 };
  if (method === 'dkm') return { global: dkm };
  if (method === 'dkm-grouped')
    return {
      byName: Object.fromEntries(
        [...shapes].map(([n, shape]) => [n, { ...dkm, groupSize: matchedGroupSize(shape, bits) }]),
      ),
    };
  if (method === 'jlcm') return { global: { method: 'jlcm', bits, codebooks } };
  throw new Error(`unknown method '${method}' (dkm, dkm-grouped, jlcm)`);
}

/** Sets the hard-assigned (exported) weights into the model, evaluates, restores the originals. */
async function evaluateExport(palettes: Map<string, PaletteTensor>) {
  for (const [n, p] of palettes)
    tf.tidy(() => model.setWeight(n, tf.tensor2d(dequantize(p), p.shape)));
  const result = { bitsPerWeight: bitsPerWeight(palettes), ...(await evaluateNow()) };
  restore();
  return result;
}

/** Gradients scaled to a global norm of at most `max`. */
function clip(grads: tf.NamedTensorMap, max: number): tf.NamedTensorMap {
  return tf.tidy(() => {
    const norm = Math.sqrt(
      Object.values(grads).reduce((s, g) => s + (g.square().sum().dataSync()[0] as number), 0),
    );
    const factor = Math.min(1, max / (norm + 1e-6));
    return Object.fromEntries(Object.entries(grads).map(([n, g]) => [n, g.mul(factor)]));
  });
}

/** The same recipe for every method: Adam, constant lr, global-norm clip 1, seeded batches. */
async function fineTune(palettizer: Palettizer) {
  const trainable = [
    ...[...weights].filter(([n]) => n !== 'model.embed_tokens.weight').map(([, v]) => v),
    ...palettizer.variables(),
  ];
  const optimizer = tf.train.adam(lr);
  model.setWeightTransform(palettizer.transform);
  let rng = 12345;
  const losses: number[] = [];
  const t0 = performance.now();
  for (let step = 0; step < steps; step++) {
    const ids = Array.from({ length: batch }, () => {
      rng = (Math.imul(rng, 1664525) + 1013904223) >>> 0;
      const start = rng % (trainTokens.length - seq - 1);
      return trainTokens.slice(start, start + seq);
    });
    await palettizer.prepare(weights);
    const { value, grads } = tf.variableGrads(() => model.loss(ids, ids), trainable);
    const clipped = clip(grads, 1);
    optimizer.applyGradients(Object.entries(clipped).map(([name, tensor]) => ({ name, tensor })));
    losses.push((await value.data())[0]);
    tf.dispose([value, ...Object.values(grads), ...Object.values(clipped)]);
    log(`    step ${step + 1}/${steps} loss ${losses[losses.length - 1].toFixed(3)}`);
  }
  model.setWeightTransform(null);
  optimizer.dispose();
  const trainSeconds = (performance.now() - t0) / 1000;
  await palettizer.prepare(weights);
  return { losses, trainSeconds, palettes: await palettizer.export(weights) };
}

log(`backend ${selection.description}`);
const baseline = await evaluateNow();
log(`16-bit: ppl ${baseline.ppl.toFixed(2)}`);
const results: Record<string, unknown>[] = [];
for (const bits of bitsList) {
  for (const method of methods) {
    const label = `${method} ${bits}-bit`;
    const t0 = performance.now();
    const ptq = new Palettizer(shapes, configFor(method, bits, 'post-training'));
    await ptq.prepare(weights);
    const ptqPalettes = await ptq.export(weights);
    ptq.dispose();
    const fitSeconds = (performance.now() - t0) / 1000;
    const post = await evaluateExport(ptqPalettes);
    log(
      `  ${label} post-training: ppl ${post.ppl.toFixed(2)} (${post.bitsPerWeight.toFixed(3)} bits)`,
    );
    results.push({ method, bits, phase: 'post-training', fitSeconds, ...post });
    if (steps === 0 || !fineTuned.includes(method)) continue;
    const palettizer = new Palettizer(shapes, configFor(method, bits, 'fine-tune'));
    const { losses, trainSeconds, palettes } = await fineTune(palettizer);
    palettizer.dispose();
    const tuned = await evaluateExport(palettes);
    log(`  ${label} fine-tuned: ppl ${tuned.ppl.toFixed(2)}`);
    results.push({ method, bits, phase: 'fine-tuned', steps, trainSeconds, losses, ...tuned });
  }
}

printJson({
  bench: 'jlcm',
  backend: selection.description,
  model: 'edkm-tiny',
  settings: {
    codebooks,
    steps,
    batch,
    seq,
    lr,
    pplChars,
    window: 256,
    stride: 128,
    mcLimit,
    fineTuned,
  },
  baseline16bit: baseline,
  results,
});
