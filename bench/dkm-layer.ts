// Peak backend memory and time of one DKM forward+backward per matrix of a LLaMA-7B decoder layer.
// Usage: tsx dkm-layer.ts [--backend cpu|webgpu] [--modes edkm,plain] [--bits 3,4] [--iters 5]
//        [--scale 1] (divide both dims by scale for a quick run) [--reps 3] [--only 11008x4096]
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
const modes = (argValue('modes') ?? 'edkm,plain').split(',') as ('edkm' | 'plain')[];
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
          const kernelTimes = async (info: tf.ProfileInfo) => {
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
        Object.assign(row, {
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
printJson({
  bench: 'dkm-layer',
  backend: selection.description,
  iters,
  scale,
  reps,
  liveBytesAfter: backendBytes(),
  rows,
});
