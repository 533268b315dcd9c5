import type { tf } from '@edkm/core';
import { f32, wasmOf } from '../heap';
import { forgetTransposed } from './BatchMatMul';

/** EdkmCopyInto: dst's values become src's, in place on the heap. */
export const copyInto: tf.KernelFunc = ({ inputs, backend }) => {
  const wasm = wasmOf(backend);
  const { src, dst } = inputs as Record<string, tf.TensorInfo>;
  f32(wasm, dst).set(f32(wasm, src));
  forgetTransposed(wasm, dst.dataId); // a cached transposed copy of dst is stale now
  wasm.incRef(dst.dataId);
  return { dataId: dst.dataId, shape: dst.shape, dtype: 'float32' };
};
