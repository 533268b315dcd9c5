import { type DecodeAttrs, decodePosition, decodeReference, type tf } from '@edkm/core';
import { f32, i32, wasmOf } from '../heap';

/** DecodeKernelNames.KvWrite: the new keys (RoPE applied) and values into the cache, in place on the heap. */
export const kvWrite: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { cache, qkv, rope, starts, position } = inputs as Record<string, tf.TensorInfo>;
  const [, b, kv, l, d] = cache.shape;
  decodeReference.kvWrite(
    f32(wasm, cache),
    { b, kv, l, d },
    f32(wasm, qkv),
    f32(wasm, rope),
    i32(wasm, starts),
    decodePosition(attrs as unknown as DecodeAttrs, position ? i32(wasm, position) : undefined),
  );
  wasm.incRef(cache.dataId);
  return { dataId: cache.dataId, shape: cache.shape, dtype: 'float32' };
};
