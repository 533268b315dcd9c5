import { type SoftContractAttrs, fromHalfBits, tableReference, type tf } from '@edkm/core';
import { codesOf, f32, output, wasmOf } from '../heap';

/**
 * The soft-contraction seed. Every term depends on a weight only through its 16-bit code, so the
 * upstream gradient is summed per code first (O(N), float64) and the attention is computed once per
 * present code.
 */
export const softContract: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { x, g, centroids } = inputs as Record<string, tf.TensorInfo>;
  const { dtype, tau } = attrs as unknown as SoftContractAttrs;
  const k = centroids.shape[1];
  const codes = codesOf(wasm, x, attrs);
  const up = f32(wasm, g);
  const gByCode = new Float64Array(65536);
  const present = new Uint8Array(65536);
  for (let i = 0; i < codes.length; i++) {
    gByCode[codes[i]] += up[i];
    present[codes[i]] = 1;
  }
  const presentCodes: number[] = [];
  for (let c = 0; c < 65536; c++) if (present[c]) presentCodes.push(c);
  const out = tableReference.softContract(
    fromHalfBits(Uint16Array.from(presentCodes), dtype),
    Float64Array.from(presentCodes, (c) => gByCode[c]),
    f32(wasm, centroids),
    k,
    tau,
  );
  return output(wasm, [2 * k], 'float32', out);
};
