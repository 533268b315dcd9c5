import { type DecodeAttrs, decodeReference, type tf } from '@edkm/core';
import { f32, i32, wasmOf } from '../heap';

/** DecodeKernelNames.KvWrite: the new keys (RoPE applied) and values into the cache, in place on the heap. */
export const kvWrite: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { cache, qkv, rope, starts } = inputs as Record<string, tf.TensorInfo>;
  const [, b, kv, l, d] = cache.shape;
  decodeReference.kvWrite(
    f32(wasm, cache),
    { b, kv, l, d },
    f32(wasm, qkv),
    f32(wasm, rope),
    i32(wasm, starts),
    attrs as unknown as DecodeAttrs,
  );
  wasm.incRef(cache.dataId);
  return { dataId: cache.dataId, shape: cache.shape, dtype: 'float32' };
};
