import { int8PackedShape, quantizeRowsHost, type tf } from '@edkm/core';
import { f32, output, wasmOf } from '../heap';

/** EdkmInt8QuantizeRows: core's host definition (int8-linear.ts), results copied onto the heap. */
export const int8QuantizeRows: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { x } = inputs as { x: tf.TensorInfo };
  const [m, k] = x.shape;
  const a = attrs as { slices: 1 | 2; padRows: number; padK: number };
  const pad = { rows: a.padRows, k: a.padK };
  const q = quantizeRowsHost(f32(wasm, x), m, k, a.slices, pad);
  const shape = int8PackedShape(m, k, pad);
  const out = [output(wasm, shape, 'int32', q.hi)];
  if (q.lo) out.push(output(wasm, shape, 'int32', q.lo));
  out.push(output(wasm, [m], 'float32', q.scale));
  return out;
};
