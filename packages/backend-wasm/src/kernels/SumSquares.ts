import { type SumSquaresAttrs, sumSquaresChunks, type tf } from '@edkm/core';
import { f32, wasmOf } from '../heap';

/** EdkmSumSquares: chunked sums of squares (float64) written into acc in place; returns acc. */
export const sumSquares: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { x, acc } = inputs as { x: tf.TensorInfo; acc: tf.TensorInfo };
  const { offset } = attrs as unknown as SumSquaresAttrs;
  const src = f32(wasm, x);
  const target = f32(wasm, acc);
  const chunks = sumSquaresChunks(src.length);
  const c = Math.ceil(src.length / chunks);
  for (let j = 0; j < chunks; j++) {
    let s = 0;
    const end = Math.min(src.length, (j + 1) * c);
    for (let i = j * c; i < end; i++) s += src[i] * src[i];
    target[offset + j] = s;
  }
  wasm.incRef(acc.dataId);
  return { dataId: acc.dataId, shape: acc.shape, dtype: 'float32' };
};
