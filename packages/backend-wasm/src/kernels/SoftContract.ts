import { type SoftContractAttrs, tableReference, type tf } from '@edkm/core';
import { codesOf, f32, output, wasmOf } from '../heap';

/** The soft-contraction seed, once per present 16-bit code (tableReference.softContractByCode). */
export const softContract: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { x, g, centroids } = inputs as Record<string, tf.TensorInfo>;
  const { dtype, tau } = attrs as unknown as SoftContractAttrs;
  const k = centroids.shape[1];
  const out = tableReference.softContractByCode(
    codesOf(wasm, x, attrs),
    f32(wasm, g),
    f32(wasm, centroids),
    k,
    dtype,
    tau,
  );
  return output(wasm, [2 * k], 'float32', out);
};
