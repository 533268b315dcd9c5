import { int8MatMulPacked, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { values } from './util';

/** EdkmInt8MatMul: core's exact host product of the packed int8 rows. */
export const int8MatMul: tf.KernelFunc = ({ inputs, backend }) => {
  const cpu = backend as MathBackendCPU;
  const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const [m, words] = a.shape;
  const n = b.shape[0];
  const c = int8MatMulPacked(
    values(cpu, a) as Int32Array,
    values(cpu, b) as Int32Array,
    m,
    n,
    words,
  );
  return cpu.makeTensorInfo([m, n], 'int32', c);
};
