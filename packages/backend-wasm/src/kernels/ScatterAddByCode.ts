import type { tf } from '@edkm/core';
import { codesOf, f32, output, wasmOf } from '../heap';

/** out[c, :] = Σ_{i: code(x[i]) = c} values[i, :] → [65536, K] (float64 accumulators). */
export const scatterAddByCode: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { values, x } = inputs as { values: tf.TensorInfo; x: tf.TensorInfo };
  const codes = codesOf(wasm, x, attrs);
  const k = values.shape[1];
  const src = f32(wasm, values);
  const acc = new Float64Array(65536 * k);
  for (let i = 0; i < codes.length; i++)
    for (let j = 0; j < k; j++) acc[codes[i] * k + j] += src[i * k + j];
  return output(wasm, [65536, k], 'float32', Float32Array.from(acc));
};
