import type { tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { codesOf, values } from './util';

export const gatherByCode: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { table, x } = inputs as { table: tf.TensorInfo; x: tf.TensorInfo };
  const codes = codesOf(cpu, x, attrs);
  const k = table.shape[1];
  const src = values(cpu, table) as Float32Array;
  const out = new Float32Array(codes.length * k);
  for (let i = 0; i < codes.length; i++)
    for (let j = 0; j < k; j++) out[i * k + j] = src[codes[i] * k + j];
  return cpu.makeTensorInfo([codes.length, k], 'float32', out);
};
