import type { ScatterAddRowsAttrs, tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { values } from './util';

export const scatterAddRows: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { values: vals, indices } = inputs as { values: tf.TensorInfo; indices: tf.TensorInfo };
  const { numRows } = attrs as unknown as ScatterAddRowsAttrs;
  const [n, k] = vals.shape;
  const src = values(cpu, vals) as Float32Array;
  const idx = values(cpu, indices) as Int32Array;
  // accumulate in float64 so the result does not depend on summation order
  const acc = new Float64Array(numRows * k);
  for (let i = 0; i < n; i++) {
    const row = idx[i];
    if (row < 0 || row >= numRows) continue;
    const base = row * k;
    const from = i * k;
    for (let j = 0; j < k; j++) acc[base + j] += src[from + j];
  }
  return cpu.makeTensorInfo([numRows, k], 'float32', Float32Array.from(acc));
};
