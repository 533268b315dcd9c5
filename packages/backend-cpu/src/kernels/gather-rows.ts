import type { tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { values } from './util';

export const gatherRows: tf.KernelFunc = ({ inputs, backend }) => {
  const cpu = backend as MathBackendCPU;
  const { table, indices } = inputs as { table: tf.TensorInfo; indices: tf.TensorInfo };
  const [u, k] = table.shape;
  const n = indices.shape[0];
  const src = values(cpu, table) as Float32Array;
  const idx = values(cpu, indices) as Int32Array;
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    const row = idx[i];
    if (row < 0 || row >= u) continue;
    if (k === 1) out[i] = src[row];
    else out.set(src.subarray(row * k, row * k + k), i * k);
  }
  return cpu.makeTensorInfo([n, k], 'float32', out);
};
