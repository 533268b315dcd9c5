import { int8MatMulPacked, type tf } from '@edkm/core';
import { i32, output, wasmOf } from '../heap';

/** EdkmInt8MatMul: core's exact host product of the packed int8 rows, copied onto the heap. */
export const int8MatMul: tf.KernelFunc = ({ inputs, backend }) => {
  const wasm = wasmOf(backend);
  const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const [m, words] = a.shape;
  const n = b.shape[0];
  const c = int8MatMulPacked(i32(wasm, a), i32(wasm, b), m, n, words);
  return output(wasm, [m, n], 'int32', c);
};
