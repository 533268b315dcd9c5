import { int8RescaleHost, type tf } from '@edkm/core';
import { f32, i32, output, wasmOf } from '../heap';

/** EdkmInt8Rescale: core's host definition, the result copied onto the heap. */
export const int8Rescale: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { c, sa, sb, c2, c3, residual } = inputs as Record<string, tf.TensorInfo>;
  const y = int8RescaleHost(i32(wasm, c), f32(wasm, sa), f32(wasm, sb), {
    c2: c2 ? i32(wasm, c2) : undefined,
    c3: c3 ? i32(wasm, c3) : undefined,
    lo: (attrs as { lo: number }).lo,
    cols: c.shape[1],
    residual: residual ? f32(wasm, residual) : undefined,
  });
  return output(wasm, [sa.shape[0], sb.shape[0]], 'float32', y);
};
