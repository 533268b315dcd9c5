import type { tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { values } from './util';

export const gatherAffine: tf.KernelFunc = ({ inputs, backend }) => {
  const cpu = backend as MathBackendCPU;
  const { table, indices, x } = inputs as {
    table: tf.TensorInfo;
    indices: tf.TensorInfo;
    x: tf.TensorInfo;
  };
  const u = table.shape[0];
  const coef = values(cpu, table) as Float32Array;
  const idx = values(cpu, indices) as Int32Array;
  const src = values(cpu, x) as Float32Array;
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const row = idx[i];
    if (row >= 0 && row < u) out[i] = src[i] * coef[2 * row] + coef[2 * row + 1];
  }
  return cpu.makeTensorInfo([src.length], 'float32', out);
};
