import { tableReference, type tf } from '@edkm/core';
import { codesOf, f32, i32, output, wasmOf } from '../heap';

/** Σ_i g[i]·table[codeToRow[code(x[i])], :] → [C]. */
export const codeContract: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { table, codeToRow, x, g } = inputs as Record<string, tf.TensorInfo>;
  const out = tableReference.codeContract(
    f32(wasm, table),
    table.shape[1],
    i32(wasm, codeToRow),
    codesOf(wasm, x, attrs),
    f32(wasm, g),
  );
  return output(wasm, [table.shape[1]], 'float32', out);
};
