import { quantizeRowsHost, type tf } from '@edkm/core';
import { f32, output, wasmOf } from '../heap';

/** EdkmInt8QuantizeRows: core's host definition (int8-linear.ts), results copied onto the heap. */
export const int8QuantizeRows: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { x } = inputs as { x: tf.TensorInfo };
  const [m, k] = x.shape;
  const q = quantizeRowsHost(f32(wasm, x), m, k, (attrs as { slices: 1 | 2 }).slices);
  const w = Math.ceil(k / 4);
  const out = [output(wasm, [m, w], 'int32', q.hi)];
  if (q.lo) out.push(output(wasm, [m, w], 'int32', q.lo));
  out.push(output(wasm, [m], 'float32', q.scale));
  return out;
};
