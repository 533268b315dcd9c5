import type { tf } from '@edkm/core';
import { codesOf, output, wasmOf } from '../heap';

/** Counts of each 16-bit code → [65536] int32. */
export const codeHistogram: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const codes = codesOf(wasm, (inputs as { x: tf.TensorInfo }).x, attrs);
  const counts = new Int32Array(65536);
  for (let i = 0; i < codes.length; i++) counts[codes[i]]++;
  return output(wasm, [65536], 'int32', counts);
};
