import { tf } from '@edkm/core';
import { output, view, wasmOf } from '../heap';

/**
 * tfjs's wasm backend has no UnsortedSegmentSum (the gradient of every gather, e.g. an embedding
 * lookup). Each row is added into its segment once, in input order: O(N). Out-of-range ids are
 * dropped, as tfjs does.
 */
export const unsortedSegmentSum: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const { numSegments } = attrs as unknown as { numSegments: number };
  const rows = tf.util.sizeFromShape(segmentIds.shape);
  const inner = rows === 0 ? 0 : tf.util.sizeFromShape(x.shape) / rows;
  const dtype = x.dtype === 'int32' ? 'int32' : 'float32';
  const out = output(wasm, [numSegments, ...x.shape.slice(segmentIds.shape.length)], dtype);
  const dst = view(wasm, out);
  dst.fill(0);
  const src = view(wasm, x);
  const ids = view(wasm, segmentIds);
  for (let i = 0; i < rows; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const to = s * inner;
    const from = i * inner;
    for (let j = 0; j < inner; j++) dst[to + j] += src[from + j];
  }
  return out;
};
