import { type NearestEntryAttrs, nearestEntryInto, type tf } from '@edkm/core';
import { f32, i32, output, wasmOf } from '../heap';

/** EdkmNearestEntry: the float64 host loop over the wasm heap (outputs allocated first). */
export const nearestEntry: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { x, inv, table, groups, tau } = inputs as Record<string, tf.TensorInfo>;
  const { d, k } = attrs as unknown as NearestEntryAttrs;
  const [R, C] = x.shape;
  const n = (R * C) / d;
  const index = output(wasm, [n], 'int32');
  const jacobian = output(wasm, [n, d * d], 'float32');
  nearestEntryInto(
    f32(wasm, x),
    f32(wasm, inv),
    f32(wasm, table),
    i32(wasm, groups),
    f32(wasm, tau),
    R,
    C,
    d,
    k,
    i32(wasm, index),
    f32(wasm, jacobian),
  );
  return [index, jacobian];
};
