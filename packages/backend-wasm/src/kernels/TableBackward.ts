import { type TableBackwardAttrs, tableReference, type tf } from '@edkm/core';
import { f32, output, wasmOf } from '../heap';

/** The per-value gradient terms J and h through the centroid iterations → [U, 4]. */
export const tableBackward: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const {
    seed,
    points,
    counts,
    centroids,
    steps,
    rows: bound,
  } = inputs as Record<string, tf.TensorInfo>;
  const k = centroids.shape[1];
  const rows = steps ? f32(wasm, steps)[0] + 1 : centroids.shape[0];
  const out = tableReference.backward(
    f32(wasm, seed),
    f32(wasm, points),
    f32(wasm, counts),
    f32(wasm, centroids).subarray(0, rows * k),
    k,
    (attrs as unknown as TableBackwardAttrs).tau,
    // rows past the bound weigh 0: the reference leaves them out
    bound ? f32(wasm, bound)[0] : undefined,
  );
  return output(wasm, [points.shape[0], 4], 'float32', out);
};
