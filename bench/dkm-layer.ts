// Peak backend memory and time of one DKM forward+backward per matrix of a LLaMA-7B decoder layer.
// Usage: tsx dkm-layer.ts [--backend cpu|webgpu] [--modes edkm,plain,linear] [--bits 3,4]
//        [--iters 5] [--scale 1] (divide both dims by scale for a quick run) [--reps 3]
//        [--only 11008x4096] [--tokens 2048] [--profile]
// edkm / plain: the op W ↦ W̃ alone, for an upstream gradient dL/dW̃ (its peak holds W̃ and dW,
// 4 + 4 bytes per weight in float32, whatever the method). linear: a layer's step y = x·W̃ᵀ for
// `tokens` rows of x, DKM's fused linear (W̃ not kept) and the unfused matMul(x, apply(w)ᵀ), each
// against a plain linear y = x·Wᵀ: the bytes and milliseconds that DKM adds to a training step.
import '@edkm/backend-cpu';
import '@edkm/backend-webgpu';
import { backendBytes, measurePeakBytes, tf, useBackend } from '@edkm/core';
import { DkmTensor } from '@edkm/dkm';
import {
  LLAMA7B_LAYER,
  argNumber,
  argValue,
  llamaWeights,
  median,
  printJson,
  resident,
  sync,
} from './util';

const backend = argValue('backend') ?? 'auto';
const modes = (argValue('modes') ?? 'edkm,plain,linear').split(',') as (
  | 'edkm'
  | 'plain'
  | 'linear'
)[];
const tokens = argNumber('tokens', 2048);
const bitsList = (argValue('bits') ?? '3,4').split(',').map(Number);
const iters = argNumber('iters', 5);
const scale = argNumber('scale', 1);
const reps = argNumber('reps', 3);
const only = argValue('only');

const selection = await useBackend(backend);

const rows: object[] = [];
for (const m of LLAMA7B_LAYER) {
  const shape: [number, number] = [Math.floor(m.shape[0] / scale), Math.floor(m.shape[1] / scale)];
  if (only && only !== `${m.shape[0]}x${m.shape[1]}`) continue;
  const n = shape[0] * shape[1];
  const w = tf.variable(tf.tensor2d(llamaWeights(n, 42), shape));
  const probe = tf.randomNormal(shape, 0, 1, 'float32', 7);
  await resident(w);
  await resident(probe);
  for (const bits of bitsList) {
    for (const mode of modes) {
      await warmUp();
      if (mode === 'linear') {
        rows.push(await linearRow(m.name, shape, w, bits));
        process.stderr.write(`${JSON.stringify(rows[rows.length - 1])}\n`);
        continue;
      }
      const dkm = new DkmTensor(shape, { bits, maxIters: iters, epsilon: 0, mode });
      const row: Record<string, unknown> = {
        matrix: m.name,
        shape,
        count: m.count,
        bits,
        mode,
        weights: n,
      };
      try {
        const times: number[] = [];
        const prepTimes: number[] = [];
        let peak = 0;
        for (let r = 0; r < reps; r++) {
          const t0 = performance.now();
          await dkm.prepare(w);
          const t1 = performance.now();
          const { result: grads, peakExtraBytes } = await measurePeakBytes(async () => {
            // W̃ = DKM(W) and dL/dW for an upstream gradient dL/dW̃ = probe: the op's own cost only
            const g = tf.grad((x: tf.Tensor) => dkm.apply(x))(w, probe);
            await sync(g);
            return g;
          });
          const t2 = performance.now();
          grads.dispose();
          prepTimes.push(t1 - t0);
          times.push(t2 - t1);
          peak = Math.max(peak, peakExtraBytes);
        }
        if (process.argv.includes('--profile')) {
          const kernelTimes = async (info: Awaited<ReturnType<typeof tf.profile>>) => {
            const kernels = await Promise.all(
              info.kernels.map(async (k) => ({
                name: k.name,
                shape: k.outputShapes?.[0],
                ms: Number(await k.kernelTimeMs) || 0,
              })),
            );
            return {
              kernelCount: kernels.length,
              kernelMsTotal: kernels.reduce((a, k) => a + k.ms, 0),
              topKernels: kernels.sort((a, b) => b.ms - a.ms).slice(0, 8),
            };
          };
          const p0 = performance.now();
          const prepInfo = await tf.profile(() => dkm.prepare(w));
          row.prepareProfile = {
            wallMs: performance.now() - p0,
            ...dkm.timings,
            ...(await kernelTimes(prepInfo)),
          };
          const info = await tf.profile(async () => {
            const g = tf.grad((x: tf.Tensor) => dkm.apply(x))(w, probe);
            await sync(g);
            g.dispose();
          });
          row.forwardBackwardProfile = await kernelTimes(info);
        }
        // the same forward+backward `reps` times back to back, one wait at the end (a training
        // loop does not wait for each layer)
        const q0 = performance.now();
        const queued = Array.from({ length: reps }, () =>
          tf.grad((x: tf.Tensor) => dkm.apply(x))(w, probe),
        );
        await sync(queued[reps - 1]);
        row.forwardBackwardQueuedMs = (performance.now() - q0) / reps;
        tf.dispose(queued);
        Object.assign(row, {
          stepMs: median(prepTimes.map((p, i) => p + times[i])),
          prepareMs: median(prepTimes),
          forwardBackwardMs: median(times),
          peakExtraBytes: peak,
          peakExtraBytesPerWeight: peak / n,
          distinctValues: dkm.distinctPoints[0],
        });
      } catch (err) {
        row.error = err instanceof Error ? err.message.slice(0, 300) : String(err);
      }
      dkm.dispose();
      rows.push(row);
      process.stderr.write(`${JSON.stringify(row)}\n`);
    }
  }
  w.dispose();
  probe.dispose();
}
/**
 * About 0.3 s of large matmuls: a GPU left idle (while the host prepared the previous row) drops
 * its clocks, and the first milliseconds measured after that would run slow.
 */
async function warmUp(): Promise<void> {
  const a = tf.randomNormal([4096, 4096]);
  for (let i = 0; i < 30; i++) {
    const b = tf.matMul(a, a);
    await sync(b);
    b.dispose();
  }
  a.dispose();
}

/** Bytes and time that DKM adds to one linear layer's forward+backward over a plain linear. */
async function linearRow(
  matrix: string,
  shape: [number, number],
  w: tf.Variable,
  bits: number,
): Promise<Record<string, unknown>> {
  const row: Record<string, unknown> = { matrix, shape, bits, mode: 'linear', tokens };
  const n = shape[0] * shape[1];
  const x = tf.randomNormal([tokens, shape[1]], 0, 1, 'float32', 8);
  const dy = tf.randomNormal([tokens, shape[0]], 0, 1, 'float32', 9);
  await resident(x);
  await resident(dy);
  const dkm = new DkmTensor(shape, { bits, maxIters: iters, epsilon: 0 });
  const measure = async (f: (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor) => {
    let peak = 0;
    const times: number[] = [];
    for (let r = -1; r < reps; r++) {
      // r = −1: a warm-up (shader compilation), not counted
      const t0 = performance.now();
      const { result, peakExtraBytes } = await measurePeakBytes(async () => {
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => f(a as tf.Tensor2D, b as tf.Tensor2D))(
          [x, w],
          dy,
        );
        await Promise.all(g.map((t) => sync(t)));
        return g;
      });
      if (r >= 0) times.push(performance.now() - t0);
      tf.dispose(result);
      if (r >= 0) peak = Math.max(peak, peakExtraBytes);
    }
    return { peakBytes: peak, ms: median(times) };
  };
  try {
    const plain = await measure((a, b) => tf.matMul(a, b, false, true));
    await dkm.prepare(w);
    const fused = await measure((a, b) => dkm.linear(a, b));
    const unfused = await measure((a, b) => tf.matMul(a, dkm.apply(b), false, true));
    Object.assign(row, {
      plainLinear: plain,
      fused,
      unfused,
      fusedExtraBytesPerWeight: (fused.peakBytes - plain.peakBytes) / n,
      unfusedExtraBytesPerWeight: (unfused.peakBytes - plain.peakBytes) / n,
      fusedExtraMs: fused.ms - plain.ms,
    });
  } catch (err) {
    row.error = err instanceof Error ? err.message.slice(0, 300) : String(err);
  }
  dkm.dispose();
  tf.dispose([x, dy]);
  return row;
}

printJson({
  bench: 'dkm-layer',
  backend: selection.description,
  iters,
  scale,
  reps,
  liveBytesAfter: backendBytes(),
  rows,
});
