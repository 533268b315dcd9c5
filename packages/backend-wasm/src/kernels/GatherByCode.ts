import type { tf } from '@edkm/core';
import { codesOf, f32, output, wasmOf } from '../heap';

/** out[i, :] = table[code(x[i]), :] → [N, K]. */
export const gatherByCode: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { table, x } = inputs as { table: tf.TensorInfo; x: tf.TensorInfo };
  const codes = codesOf(wasm, x, attrs);
  const k = table.shape[1];
  const out = output(wasm, [codes.length, k], 'float32');
  const dst = f32(wasm, out);
  const src = f32(wasm, table);
  if (k === 1) for (let i = 0; i < codes.length; i++) dst[i] = src[codes[i]];
  else
    for (let i = 0; i < codes.length; i++)
      for (let j = 0; j < k; j++) dst[i * k + j] = src[codes[i] * k + j];
  return out;
};
