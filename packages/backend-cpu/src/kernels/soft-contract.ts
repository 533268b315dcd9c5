import { type SoftContractAttrs, tableReference, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { codesOf, values } from './util';

/** The soft-contraction seed, once per present 16-bit code (tableReference.softContractByCode). */
export const softContract: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { x, g, centroids } = inputs as Record<string, tf.TensorInfo>;
  const { dtype, tau } = attrs as unknown as SoftContractAttrs;
  const k = centroids.shape[1];
  const out = tableReference.softContractByCode(
    codesOf(cpu, x, attrs),
    values(cpu, g) as Float32Array,
    values(cpu, centroids) as Float32Array,
    k,
    dtype,
    tau,
  );
  return cpu.makeTensorInfo([2 * k], 'float32', out);
};
