import { int8PackedShape, paletteHostOf, paletteInt8Host, type tf } from '@edkm/core';
import { f32, i32, output, wasmOf } from '../heap';

/** EdkmPaletteInt8: core's host definition, the results copied onto the heap. */
export const paletteInt8: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { codes, lut, rows, scales } = inputs as Record<string, tf.TensorInfo>;
  const a = attrs as { bits: number; clusterDim: number; k: number; padRows: number; padK: number };
  const pad = { rows: a.padRows, k: a.padK };
  const { b, sb } = paletteInt8Host(
    paletteHostOf(i32(wasm, codes), f32(wasm, lut), i32(wasm, rows), f32(wasm, scales), a),
    pad,
  );
  const n = rows.shape[0];
  return [output(wasm, int8PackedShape(n, a.k, pad), 'int32', b), output(wasm, [n], 'float32', sb)];
};
