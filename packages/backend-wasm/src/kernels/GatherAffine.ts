import type { tf } from '@edkm/core';
import { f32, i32, output, wasmOf } from '../heap';

/** out[i] = x[i]·table[idx[i], 0] + table[idx[i], 1], 0 for out-of-range indices. */
export const gatherAffine: tf.KernelFunc = ({ inputs, backend }) => {
  const wasm = wasmOf(backend);
  const { table, indices, x } = inputs as Record<string, tf.TensorInfo>;
  const u = table.shape[0];
  const n = x.shape[0];
  const out = output(wasm, [n], 'float32');
  const dst = f32(wasm, out);
  const coef = f32(wasm, table);
  const idx = i32(wasm, indices);
  const src = f32(wasm, x);
  for (let i = 0; i < n; i++) {
    const row = idx[i];
    dst[i] = row >= 0 && row < u ? src[i] * coef[2 * row] + coef[2 * row + 1] : 0;
  }
  return out;
};
