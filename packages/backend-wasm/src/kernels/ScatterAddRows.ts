import type { ScatterAddRowsAttrs, tf } from '@edkm/core';
import { f32, i32, output, wasmOf } from '../heap';

/** Per-row sums by index (float64 accumulators: independent of summation order). */
export const scatterAddRows: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { values, indices } = inputs as { values: tf.TensorInfo; indices: tf.TensorInfo };
  const { numRows } = attrs as unknown as ScatterAddRowsAttrs;
  const [n, k] = values.shape;
  const src = f32(wasm, values);
  const idx = i32(wasm, indices);
  const acc = new Float64Array(numRows * k);
  for (let i = 0; i < n; i++) {
    const row = idx[i];
    if (row < 0 || row >= numRows) continue;
    const base = row * k;
    const from = i * k;
    for (let j = 0; j < k; j++) acc[base + j] += src[from + j];
  }
  return output(wasm, [numRows, k], 'float32', Float32Array.from(acc));
};
