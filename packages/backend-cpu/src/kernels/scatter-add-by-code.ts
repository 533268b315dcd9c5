import type { tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { codesOf, values } from './util';

export const scatterAddByCode: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { values: vals, x } = inputs as { values: tf.TensorInfo; x: tf.TensorInfo };
  const codes = codesOf(cpu, x, attrs);
  const k = vals.shape[1];
  const src = values(cpu, vals) as Float32Array;
  const acc = new Float64Array(65536 * k);
  for (let i = 0; i < codes.length; i++)
    for (let j = 0; j < k; j++) acc[codes[i] * k + j] += src[i * k + j];
  return cpu.makeTensorInfo([65536, k], 'float32', Float32Array.from(acc));
};
