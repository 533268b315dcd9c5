import { type SumSquaresAttrs, optimReference, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

/** EdkmSumSquares: chunked sums of squares written into acc in place (float64 sums). */
export const sumSquares: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { x, acc } = inputs as { x: tf.TensorInfo; acc: tf.TensorInfo };
  const { offset } = attrs as unknown as SumSquaresAttrs;
  const target = cpu.data.get(acc.dataId).values as Float32Array;
  const src = cpu.data.get(x.dataId).values as Float32Array;
  target.set(optimReference.sumSquares(src, target, offset));
  cpu.incRef(acc.dataId);
  return { dataId: acc.dataId, shape: acc.shape, dtype: 'float32' };
};
