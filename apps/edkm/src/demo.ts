// `pnpm demo`: the whole eDKM pipeline on the shipped tiny model, in a few minutes on a CPU:
// evaluate the 16-bit model, the post-training 3-bit baselines (round-to-nearest, k-means),
// fine-tune with 3-bit eDKM on Shakespeare, export the palettized model (LUTs + packed indices),
// reload it, evaluate it and generate from it. Writes runs/demo/{summary.json,loss.svg,model}.
import '@edkm/backend-cpu';
import '@edkm/backend-webgpu';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tf, useBackend } from '@edkm/core';
import { Palettizer } from '@edkm/dkm';
import { evaluate, fromLogitsFn, perplexity } from '@edkm/eval';
import { type LoadedLlama, defaultModelDir, generate, loadLlama } from '@edkm/llama';
import { AdamW, clipByGlobalNorm, learningRate } from './optim';
import { assignWeights, readPalettized, writePalettized } from './palettized';
import { writeLossPlot } from './plot';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const steps = arg('steps', 6);
const bits = arg('bits', 3);
const batch = arg('batch', 4);
const seqLen = arg('seq', 64);
const pplChars = arg('ppl-chars', 2000);
const mcLimit = arg('mc', 10);

const modelDir = defaultModelDir();
const repo = join(modelDir, '..', '..');
const out = join(process.cwd(), 'runs', 'demo');
mkdirSync(out, { recursive: true });
const log = (s: string) => process.stdout.write(`${s}\n`);

const backend = await useBackend(
  process.argv.includes('--webgpu') ? 'webgpu' : process.argv.includes('--cpu') ? 'cpu' : 'auto',
);
log(`backend: ${backend.description}`);
const llama = loadLlama(modelDir);
const { model, tokenizer } = llama;
const valText = readFileSync(join(repo, 'data', 'eval', 'shakespeare-val.txt'), 'utf8').slice(
  0,
  pplChars,
);
const trainText = readFileSync(join(repo, 'data', 'tinyshakespeare', 'input.txt'), 'utf8').slice(
  0,
  -20000,
);
const scoring = fromLogitsFn({
  logits: (ids) => model.logits(ids),
  encode: (t, o) => tokenizer.encode(t, o),
  maxLength: 256,
  prefixTokenId: tokenizer.bosId,
});

async function evaluateNow(label: string) {
  const t0 = performance.now();
  const ppl = await perplexity(scoring, valText, { window: 256, stride: 128 });
  const mc = await evaluate({
    model: scoring,
    task: 'multiple_choice',
    dataPath: join(repo, 'data', 'eval', 'shakespeare-next-line.jsonl'),
    limit: mcLimit,
  });
  const row = {
    label,
    ppl: ppl.ppl,
    acc: (mc as { acc?: number }).acc,
    acc_norm: (mc as { acc_norm?: number }).acc_norm,
    seconds: (performance.now() - t0) / 1000,
  };
  log(
    `  ${label.padEnd(28)} ppl ${row.ppl.toFixed(2)}  next-line acc ${row.acc?.toFixed(3)}  (${row.seconds.toFixed(0)} s)`,
  );
  return row;
}

/** Snapshot / restore of every weight (to run the baselines from the same 16-bit model). */
async function snapshot(m: LoadedLlama['model']) {
  const s = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, w] of m.getWeights())
    s.set(name, { shape: w.shape, data: Float32Array.from((await w.data()) as Float32Array) });
  return s;
}

const linear = model.linearWeightNames().filter((n) => n !== 'lm_head.weight'); // LM head stays 16-bit
const shapes = new Map(
  linear.map((n) => [n, model.getWeights().get(n)!.shape as [number, number]]),
);
const results: Record<string, unknown>[] = [];
log('\n1. evaluate');
const original = await snapshot(model);
results.push(await evaluateNow('16-bit (bf16)'));

// post-training baselines
{
  const rtn = new Map(original);
  for (const name of linear) {
    const { shape, data } = original.get(name)!;
    const max = data.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    const levels = 2 ** bits - 1;
    const step = (2 * max) / levels;
    rtn.set(name, { shape, data: data.map((x) => -max + Math.round((x + max) / step) * step) });
  }
  assignWeights(model, rtn);
  results.push(await evaluateNow(`RTN ${bits}-bit (no training)`));
  assignWeights(model, original);
  const kmeans = new Palettizer(shapes, { global: { bits, maxIters: 20, tau: 1e-9 } });
  await kmeans.prepare(model.getWeights());
  const palettes = await kmeans.export(model.getWeights());
  kmeans.dispose();
  const path = join(out, 'kmeans.safetensors');
  await writePalettized(path, model, palettes);
  assignWeights(model, readPalettized(path));
  results.push(await evaluateNow(`k-means ${bits}-bit (no training)`));
  assignWeights(model, original);
}

log(`\n2. fine-tune with ${bits}-bit eDKM: ${steps} steps of ${batch}×${seqLen} tokens`);
const tokens = tokenizer.encode(trainText.slice(0, 400_000));
const palettizer = new Palettizer(shapes, { global: { bits, maxIters: 5, tauScale: 1 } });
model.setWeightTransform(palettizer.transform);
const optimizer = new AdamW({ weightDecay: 0 });
const variables = model.getWeights();
const trainable = new Map([...variables].filter(([n]) => n !== 'model.embed_tokens.weight'));
let rng = 12345;
const losses: { step: number; loss: number; series: string }[] = [];
const t0 = performance.now();
for (let step = 0; step < steps; step++) {
  const ids: number[][] = [];
  for (let b = 0; b < batch; b++) {
    rng = (Math.imul(rng, 1664525) + 1013904223) >>> 0;
    const start = rng % (tokens.length - seqLen - 1);
    ids.push(tokens.slice(start, start + seqLen));
  }
  await palettizer.prepare(variables);
  const { value, grads } = tf.variableGrads(() => model.loss(ids, ids), [...trainable.values()]);
  const named: Record<string, tf.Tensor> = {};
  for (const [name, v] of trainable) named[name] = grads[v.name];
  await clipByGlobalNorm(named, 1);
  optimizer.apply(
    trainable,
    named,
    learningRate(step, { lr: 5e-4, warmupSteps: 3, totalSteps: steps }),
  );
  const loss = (await value.data())[0];
  tf.dispose([value, ...Object.values(named)]);
  losses.push({ step, loss, series: 'train' });
  const tokPerS = ((step + 1) * batch * seqLen) / ((performance.now() - t0) / 1000);
  process.stdout.write(
    `\r  step ${step + 1}/${steps}  loss ${loss.toFixed(3)}  ${tokPerS.toFixed(0)} tok/s   `,
  );
}
log('');
await writeLossPlot(join(out, 'loss.svg'), losses, `eDKM ${bits}-bit fine-tuning (edkm-tiny)`);

log('\n3. export the palettized model');
await palettizer.prepare(variables);
const palettes = await palettizer.export(variables);
model.setWeightTransform(null);
palettizer.dispose();
const exportPath = join(out, `edkm-tiny-${bits}bit.safetensors`);
const size = await writePalettized(exportPath, model, palettes, { bits: String(bits) });
const bitsPerWeight = (8 * size.clusteredBytes) / size.clusteredWeights;
const fileBytes = statSync(exportPath).size;
const sixteenBit = 2 * (size.clusteredWeights + size.otherWeights);
log(
  `  clustered weights: ${size.clusteredWeights.toLocaleString()} at ${bitsPerWeight.toFixed(3)} bits/weight (LUTs included)`,
);
log(
  `  file: ${(fileBytes / 1e6).toFixed(2)} MB vs ${(sixteenBit / 1e6).toFixed(2)} MB at 16 bits (${(sixteenBit / fileBytes).toFixed(2)}× smaller; embeddings, norms and LM head stay 16-bit)`,
);

log('\n4. reload the export and evaluate it');
assignWeights(model, readPalettized(exportPath));
results.push(await evaluateNow(`eDKM ${bits}-bit fine-tuned`));
const prompt = 'ROMEO:';
const generated = await generate(model, tokenizer.encode(prompt), {
  maxNewTokens: 40,
  temperature: 0.8,
  topK: 40,
  seed: 1,
});
log(`\n5. generate from the palettized model\n  ${prompt}${tokenizer.decode(generated)}`);

const summary = {
  backend: backend.description,
  bits,
  steps,
  batch,
  seqLen,
  trainSeconds: (performance.now() - t0) / 1000,
  size: { ...size, bitsPerWeight, fileBytes, sixteenBitBytes: sixteenBit },
  results,
  sample: tokenizer.decode(generated),
};
const { writeFileSync } = await import('node:fs');
writeFileSync(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
log(`\nsummary → ${join(out, 'summary.json')}, loss plot → ${join(out, 'loss.svg')}`);
