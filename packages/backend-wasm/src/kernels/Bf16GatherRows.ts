import { decodeBf16Pairs, type tf } from '@edkm/core';
import { f32, i32, output, wasmOf } from '../heap';
import { wordsOf } from './packed';

/** Rows of a bf16 pair-packed table [U, K] by id → float32 [N, K], zero rows out of range. */
export const bf16GatherRows: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { table, ids } = inputs as Record<string, tf.TensorInfo>;
  const { k, u } = attrs as unknown as { k: number; u: number };
  const n = ids.shape[0];
  const y = output(wasm, [n, k], 'float32');
  const out = f32(wasm, y);
  const words = wordsOf(i32(wasm, table));
  const id = i32(wasm, ids);
  for (let i = 0; i < n; i++)
    if (id[i] >= 0 && id[i] < u)
      decodeBf16Pairs(words, id[i] * k, k, out.subarray(i * k, i * k + k));
    else out.fill(0, i * k, i * k + k);
  return y;
};
