import { decodeReference, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

/** DecodeKernelNames.RmsNorm: each row scaled by its inverse RMS and the weight. */
export const rmsNorm: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { x, weight } = inputs as Record<string, tf.TensorInfo>;
  const get = (t: tf.TensorInfo) => cpu.data.get(t.dataId).values as Float32Array;
  const out = decodeReference.rmsNorm(
    get(x),
    x.shape[1],
    get(weight),
    (attrs as unknown as { eps: number }).eps,
  );
  return cpu.makeTensorInfo(x.shape, 'float32', out);
};
