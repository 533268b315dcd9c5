// The eDKM paper's ablation on one LLaMA-7B decoder layer (its seven linear weights, DKM 3 bits):
// device peak memory and step time (prepare + forward + backward of all seven) for
// plain, +M (marshaling), +M+U (uniquification), +M+U+S (sharding, 2 and 4 shards).
// Usage: tsx marshal.ts [--backend webgpu] [--bits 3] [--iters 5] [--scale 1] [--variants plain,M,MU,MUS2,MUS4]
import '@edkm/backend-cpu';
import '@edkm/backend-webgpu';
import { measurePeakBytes, tf, useBackend } from '@edkm/core';
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

const selection = await useBackend(argValue('backend') ?? 'auto');
const bits = argNumber('bits', 3);
const iters = argNumber('iters', 5);
const scale = argNumber('scale', 1);
const variants = (argValue('variants') ?? 'plain,M,MU,MUS2,MUS4').split(',');

const matrices = LLAMA7B_LAYER.flatMap((m) =>
  Array.from({ length: m.count }, (_, i) => ({
    name: `${m.name}#${i}`,
    shape: [Math.floor(m.shape[0] / scale), Math.floor(m.shape[1] / scale)] as [number, number],
  })),
);
const totalWeights = matrices.reduce((s, m) => s + m.shape[0] * m.shape[1], 0);
const weights = matrices.map((m, i) =>
  tf.variable(tf.tensor2d(llamaWeights(m.shape[0] * m.shape[1], 100 + i), m.shape)),
);
const upstream = matrices.map((m, i) => tf.randomNormal(m.shape, 0, 1e-3, 'float32', i));
for (const t of [...weights, ...upstream]) await resident(t);

function runtimeOf(
  variant: string,
  marshal: Marshaler,
): { mode: 'plain' | 'edkm'; runtime: DkmRuntimeOptions } {
  if (variant === 'plain') return { mode: 'plain', runtime: {} };
  // code tables: no index list at all (kernels key on each weight's own 16-bit code)
  if (variant === 'code') return { mode: 'edkm', runtime: {} };
  if (variant === 'M') return { mode: 'edkm', runtime: { marshal, uniquify: false } };
  if (variant === 'MU') return { mode: 'edkm', runtime: { marshal } };
  const shards = Number(variant.replace('MUS', ''));
  return { mode: 'edkm', runtime: { marshal, shards } };
}

const rows: Record<string, unknown>[] = [];
for (const variant of variants) {
  const marshal = new Marshaler();
  const { mode, runtime } = runtimeOf(variant, marshal);
  const dkms = matrices.map(
    (m) => new DkmTensor(m.shape, { bits, maxIters: iters, epsilon: 0, mode }, runtime),
  );
  const row: Record<string, unknown> = { variant, mode, bits, iters, weights: totalWeights };
  try {
    const t0 = performance.now();
    const { peakExtraBytes } = await measurePeakBytes(async () => {
      for (const [i, d] of dkms.entries()) await d.prepare(weights[i]);
      const t1 = performance.now();
      // forward + backward of every matrix for a given upstream gradient (what a training step
      // gets from the layers above); all seven weight gradients are held at the end, as in a step
      const grads = dkms.map((d, i) =>
        tf.grad((x: tf.Tensor) => d.apply(x))(weights[i], upstream[i]),
      );
      await Promise.all(grads.map((g) => sync(g)));
      row.forwardBackwardMs = performance.now() - t1;
      tf.dispose(grads);
    });
    row.stepMs = performance.now() - t0;
    row.peakDeviceExtraBytes = peakExtraBytes;
    row.peakDeviceExtraBytesPerWeight = peakExtraBytes / totalWeights;
    row.marshal = marshal.stats();
  } catch (err) {
    row.error = err instanceof Error ? err.message.slice(0, 300) : String(err);
  }
  for (const d of dkms) d.dispose();
  rows.push(row);
  process.stderr.write(`${JSON.stringify(row)}\n`);
}
const plain = rows.find((r) => r.variant === 'plain' && r.peakDeviceExtraBytes);
for (const r of rows) {
  if (plain && r.peakDeviceExtraBytes)
    r.reductionVsPlain =
      (plain.peakDeviceExtraBytes as number) / (r.peakDeviceExtraBytes as number);
}
printJson({
  bench: 'marshal',
  backend: selection.description,
  scale,
  layerWeights: totalWeights,
  rows,
});
