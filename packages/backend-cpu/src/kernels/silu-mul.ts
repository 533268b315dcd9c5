import { decodeReference, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

/** DecodeKernelNames.SiluMul: silu(gate) · up from one stacked [M, 2I] product. */
export const siluMul: tf.KernelFunc = ({ inputs, backend }) => {
  const cpu = backend as MathBackendCPU;
  const { gu } = inputs as Record<string, tf.TensorInfo>;
  const [m, i2] = gu.shape;
  const out = decodeReference.siluMul(cpu.data.get(gu.dataId).values as Float32Array, m);
  return cpu.makeTensorInfo([m, i2 / 2], 'float32', out);
};
