import type { tf } from '@edkm/core';
import { copyRun, f32, i32, output, wasmOf } from '../heap';

/** out[i] = table[indices[i]], zero rows for out-of-range indices. */
export const gatherRows: tf.KernelFunc = ({ inputs, backend }) => {
  const wasm = wasmOf(backend);
  const { table, indices } = inputs as { table: tf.TensorInfo; indices: tf.TensorInfo };
  const [u, k] = table.shape;
  const n = indices.shape[0];
  const out = output(wasm, [n, k], 'float32');
  const dst = f32(wasm, out);
  const src = f32(wasm, table);
  const idx = i32(wasm, indices);
  for (let i = 0; i < n; i++) {
    const row = idx[i];
    if (row < 0 || row >= u) dst.fill(0, i * k, i * k + k);
    else copyRun(src, row * k, dst, i * k, k);
  }
  return out;
};
