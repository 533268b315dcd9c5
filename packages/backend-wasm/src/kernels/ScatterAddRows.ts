import { type ScatterAddRowsAttrs, reference, type tf } from '@edkm/core';
import { f32, i32, output, wasmOf } from '../heap';

/** Per-row sums by index: the float64 reference (independent of summation order). */
export const scatterAddRows: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { values, indices } = inputs as { values: tf.TensorInfo; indices: tf.TensorInfo };
  const { numRows } = attrs as unknown as ScatterAddRowsAttrs;
  const k = values.shape[1];
  const out = reference.scatterAddRows(f32(wasm, values), k, i32(wasm, indices), numRows);
  return output(wasm, [numRows, k], 'float32', out);
};
