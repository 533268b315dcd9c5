import { type DecodeAttrs, decodePosition, decodeReference, type tf } from '@edkm/core';
import { f32, i32, output, wasmOf } from '../heap';

/** DecodeKernelNames.CachedAttention: causal attention of the new queries over the cache. */
export const cachedAttention: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { qkv, cache, rope, starts, position } = inputs as Record<string, tf.TensorInfo>;
  const [, b, kv, l, d] = cache.shape;
  const a = decodePosition(
    attrs as unknown as DecodeAttrs,
    position ? i32(wasm, position) : undefined,
  );
  const out = decodeReference.cachedAttention(
    f32(wasm, qkv),
    f32(wasm, cache),
    { b, kv, l, d },
    f32(wasm, rope),
    i32(wasm, starts),
    a,
  );
  return output(wasm, [qkv.shape[0], a.heads * d], 'float32', out);
};
