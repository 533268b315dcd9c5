import type { tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

/** EdkmCopyInto: dst's values become src's, in place. */
export const copyInto: tf.KernelFunc = ({ inputs, backend }) => {
  const cpu = backend as MathBackendCPU;
  const { src, dst } = inputs as Record<string, tf.TensorInfo>;
  const get = (t: tf.TensorInfo) => cpu.data.get(t.dataId).values as Float32Array;
  get(dst).set(get(src));
  cpu.incRef(dst.dataId);
  return { dataId: dst.dataId, shape: dst.shape, dtype: 'float32' };
};
