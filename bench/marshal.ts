// The eDKM paper's ablation on one LLaMA-7B decoder layer (its seven linear weights, DKM 3 bits):
// step time (prepare + forward of all seven + backward of all seven) and memory for plain, +M
// (marshaling), +M+U (uniquification), +M+U+S (sharding, 2 and 4 shards), and `code` (eDKM's
// default: no index list, tables keyed by each weight's own 16-bit code). Memory is reported two
// ways: `savedBytes`, what DKM keeps for the backward pass when the backward starts (device bytes
// beyond the inputs and the W̃ outputs, plus the marshaler's host copies): the paper's train-time
// footprint, which its 130× compares; and `peakDeviceExtraBytes`, the whole device peak of the
// step, W̃ and the weight gradients included.
// Usage: tsx marshal.ts [--backend webgpu] [--bits 3] [--iters 5] [--scale 1]
//                       [--variants plain,M,MU,MUS2,MUS4,code]
// Each variant runs in a process of its own (a failure — plain DKM exceeds WebGPU's limits on 7B
// shapes — cannot leave the next measurement skewed). Plain DKM's memory is linear in the weights:
// when it does not run at full size, it is measured at the largest reduced size (halving both
// dimensions) where it does and extrapolated per weight; the row says so.
import '@edkm/backend-cpu';
import '@edkm/backend-webgpu';
import { spawnSync } from 'node:child_process';
import { backendBytes, flushBackend, measurePeakBytes, tf, useBackend } from '@edkm/core';
import { type DkmRuntimeOptions, DkmTensor } from '@edkm/dkm';
import { Marshaler } from '@edkm/marshal';
import {
  LLAMA7B_LAYER,
  argNumber,
  argValue,
  llamaWeights,
  printJson,
  resident,
  sync,
} from './util';

const backend = argValue('backend') ?? 'auto';
const bits = argNumber('bits', 3);
const iters = argNumber('iters', 5);
const scale = argNumber('scale', 1);
const variants = (argValue('variants') ?? 'plain,M,MU,MUS2,MUS4,code').split(',');

type Row = Record<string, unknown> & { variant: string };
/** tfjs's customGrad callback type (its variadic signature does not fit named parameters). */
type CustomGrad = Parameters<typeof tf.customGrad>[0];

const layerWeights = (s: number) =>
  LLAMA7B_LAYER.reduce(
    (n, m) => n + m.count * Math.floor(m.shape[0] / s) * Math.floor(m.shape[1] / s),
    0,
  );

function runtimeOf(
  variant: string,
  marshal: Marshaler,
): { mode: 'plain' | 'edkm'; runtime: DkmRuntimeOptions } {
  if (variant === 'plain') return { mode: 'plain', runtime: {} };
  if (variant === 'code') return { mode: 'edkm', runtime: {} };
  if (variant === 'M') return { mode: 'edkm', runtime: { marshal, uniquify: false } };
  if (variant === 'MU') return { mode: 'edkm', runtime: { marshal, tables: 'index' } };
  const shards = Number(variant.replace('MUS', ''));
  if (!variant.startsWith('MUS') || !(shards >= 1)) throw new Error(`unknown variant ${variant}`);
  return { mode: 'edkm', runtime: { marshal, shards } };
}

/** One variant at one scale, in this process. */
async function measure(variant: string, s: number): Promise<Row> {
  const selection = await useBackend(backend);
  const matrices = LLAMA7B_LAYER.flatMap((m) =>
    Array.from({ length: m.count }, () => [Math.floor(m.shape[0] / s), Math.floor(m.shape[1] / s)]),
  ) as [number, number][];
  const total = layerWeights(s);
  const weights = matrices.map((shape, i) =>
    tf.variable(tf.tensor2d(llamaWeights(shape[0] * shape[1], 100 + i), shape)),
  );
  const upstream = matrices.map((shape, i) => tf.randomNormal(shape, 0, 1e-3, 'float32', i));
  for (const t of [...weights, ...upstream]) await resident(t);
  const marshal = new Marshaler();
  const { mode, runtime } = runtimeOf(variant, marshal);
  const dkms = matrices.map(
    (shape) => new DkmTensor(shape, { bits, maxIters: iters, epsilon: 0, mode }, runtime),
  );
  const row: Row = {
    variant,
    mode,
    bits,
    iters,
    scale: s,
    weights: total,
    backend: selection.description,
  };
  try {
    const before = backendBytes();
    let savedDeviceBytes = 0;
    let savedHostBytes = 0;
    // an identity on the loss whose gradient runs first: it sees what the forward left behind
    const backwardStarts = tf.customGrad(((x: tf.Tensor) => ({
      value: x.clone(),
      gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
        flushBackend(); // what the forward disposed while its work was queued is free now
        const outputs = total * 4; // the seven W̃ (float32), kept as a matmul would keep them
        savedDeviceBytes = backendBytes() - before - outputs;
        savedHostBytes = marshal.stats().hostBytes;
        return [(Array.isArray(dy) ? dy[0] : dy).clone()];
      },
    })) as unknown as CustomGrad);
    // W̃_i ↦ a scalar whose gradient into W̃_i is G_i: what the layer's matmul would hand back
    // (and, like a matmul, it keeps W̃ for the backward)
    const consume = (i: number) =>
      tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
        save([x]);
        return { value: tf.scalar(0), gradFunc: () => [upstream[i].clone()] };
      }) as unknown as CustomGrad);
    const consumers = matrices.map((_, i) => consume(i));
    // one layer's step: prepare all seven (concurrently, as Palettizer.prepare does), the forward
    // of all seven, then the backward of all seven with the upstream gradients G_i; all seven
    // weight gradients are held at the end
    const step = async () => {
      const t0 = performance.now();
      await Promise.all(dkms.map((d, i) => d.prepare(weights[i])));
      const t1 = performance.now();
      const grads = tf.grads((...ws: tf.Tensor[]) => {
        const terms = ws.map((w, i) => consumers[i](dkms[i].apply(w)) as tf.Scalar);
        return backwardStarts(tf.addN(terms)) as tf.Scalar;
      })(weights);
      await Promise.all(grads.map((g) => sync(g)));
      const t2 = performance.now();
      tf.dispose(grads);
      return { prepareMs: t1 - t0, forwardBackwardMs: t2 - t1, stepMs: t2 - t0 };
    };
    await step(); // warm-up: shader compilation, buffer pools
    const { result: times, peakExtraBytes } = await measurePeakBytes(step);
    Object.assign(row, times);
    row.savedDeviceBytes = savedDeviceBytes;
    row.savedHostBytes = savedHostBytes;
    row.savedBytes = savedDeviceBytes + savedHostBytes;
    row.savedBytesPerWeight = (savedDeviceBytes + savedHostBytes) / total;
    row.peakDeviceExtraBytes = peakExtraBytes;
    row.peakDeviceExtraBytesPerWeight = peakExtraBytes / total;
    row.marshal = marshal.stats();
  } catch (err) {
    row.error = err instanceof Error ? err.message.slice(0, 300) : String(err);
  }
  return row;
}

/** Runs `--child variant scale` in a fresh process and returns its row. */
function inChild(variant: string, s: number): Row {
  // under bench/gpu-suite.ts (one bundle for every bench) the bench's name comes first
  const suite = process.argv[2] === 'marshal' ? ['marshal'] : [];
  const args = [...process.execArgv, process.argv[1], ...suite, '--child', variant, String(s)];
  for (const flag of ['backend', 'bits', 'iters'])
    if (argValue(flag) !== undefined) args.push(`--${flag}`, argValue(flag)!);
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Row;
  } catch {
    return { variant, scale: s, error: `the measuring process failed: ${r.stderr.slice(-300)}` };
  }
}

const child = process.argv.indexOf('--child');
if (child >= 0) {
  const row = await measure(process.argv[child + 1], Number(process.argv[child + 2]));
  process.stdout.write(`${JSON.stringify(row)}\n`);
} else {
  const rows: Row[] = [];
  for (const variant of variants) {
    let row = inChild(variant, scale);
    if (row.error && (variant === 'plain' || variant === 'M')) {
      // memory linear in the weights: measure at the largest reduced size that runs (halving both
      // dimensions), extrapolate per weight
      for (let s = scale * 2; s <= scale * 64; s *= 2) {
        const reduced = inChild(variant, s);
        if (reduced.error) continue;
        const perWeight = (key: string) => (reduced[key] as number) / (reduced.weights as number);
        row = {
          ...row,
          fullSizeError: row.error,
          error: undefined,
          measuredAtScale: s,
          measuredWeights: reduced.weights,
          measuredStepMs: reduced.stepMs,
          savedBytes: perWeight('savedBytes') * layerWeights(scale),
          savedBytesPerWeight: reduced.savedBytesPerWeight,
          peakDeviceExtraBytes: perWeight('peakDeviceExtraBytes') * layerWeights(scale),
          peakDeviceExtraBytesPerWeight: reduced.peakDeviceExtraBytesPerWeight,
          extrapolated: true,
        };
        break;
      }
    }
    rows.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  }
  // the paper's figure is DKM's own train-time footprint (what it keeps for the backward pass);
  // the whole device peak (W̃ and dW included, 8 bytes per weight in float32) is reported beside it
  const plain = rows.find((r) => r.variant === 'plain' && r.savedBytes);
  for (const r of rows) {
    if (!plain || r === plain || !r.savedBytes) continue;
    r.savedReductionVsPlain = (plain.savedBytes as number) / (r.savedBytes as number);
    r.peakReductionVsPlain =
      (plain.peakDeviceExtraBytes as number) / (r.peakDeviceExtraBytes as number);
  }
  printJson({ bench: 'marshal', scale, layerWeights: layerWeights(scale), rows });
}
