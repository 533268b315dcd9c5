import { type TableIterateAttrs, tableReference, type tf } from '@edkm/core';
import { f32, output, wasmOf } from '../heap';

/** The centroid iterations on the uniquified table (core's float64 reference; U ≤ 65,536). */
export const tableIterate: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { points, counts, c0, rows } = inputs as Record<string, tf.TensorInfo>;
  const out = tableReference.iterateAll(
    f32(wasm, points),
    f32(wasm, counts),
    f32(wasm, c0),
    attrs as unknown as TableIterateAttrs,
    // rows past the bound weigh 0: the reference leaves them out
    rows ? f32(wasm, rows)[0] : undefined,
  );
  return output(wasm, [out.length], 'float32', out);
};
