import { type ClipScaleAttrs, optimReference, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

/** EdkmClipScale: [global norm, clip factor] from the partial sums of squares. */
export const clipScale: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { acc } = inputs as { acc: tf.TensorInfo };
  const { maxNorm } = attrs as unknown as ClipScaleAttrs;
  const out = optimReference.clipScale(cpu.data.get(acc.dataId).values as Float32Array, maxNorm);
  return cpu.makeTensorInfo([2], 'float32', out);
};
