import { int8PackedShape, paletteHostOf, paletteInt8Host, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { values } from './util';

/** EdkmPaletteInt8: core's host definition (int8-linear.ts). */
export const paletteInt8: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { codes, lut, rows, scales } = inputs as Record<string, tf.TensorInfo>;
  const a = attrs as { bits: number; clusterDim: number; k: number; padRows: number; padK: number };
  const pad = { rows: a.padRows, k: a.padK };
  const { b, sb } = paletteInt8Host(
    paletteHostOf(
      values(cpu, codes) as Int32Array,
      values(cpu, lut) as Float32Array,
      values(cpu, rows) as Int32Array,
      values(cpu, scales) as Float32Array,
      a,
    ),
    pad,
  );
  const n = rows.shape[0];
  return [
    cpu.makeTensorInfo(int8PackedShape(n, a.k, pad), 'int32', b),
    cpu.makeTensorInfo([n], 'float32', sb),
  ];
};
