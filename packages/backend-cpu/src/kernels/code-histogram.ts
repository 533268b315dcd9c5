import type { tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { codesOf } from './util';

export const codeHistogram: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const codes = codesOf(cpu, (inputs as { x: tf.TensorInfo }).x, attrs);
  const counts = new Int32Array(65536);
  for (let i = 0; i < codes.length; i++) counts[codes[i]]++;
  return cpu.makeTensorInfo([65536], 'int32', counts);
};
