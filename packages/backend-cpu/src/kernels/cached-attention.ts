import { type DecodeAttrs, decodePosition, decodeReference, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

/** DecodeKernelNames.CachedAttention: causal attention of the new queries over the cache. */
export const cachedAttention: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { qkv, cache, rope, starts, position } = inputs as Record<string, tf.TensorInfo>;
  const get = (t: tf.TensorInfo) => cpu.data.get(t.dataId).values as tf.backend_util.TypedArray;
  const [, b, kv, l, d] = cache.shape;
  const a = decodePosition(attrs as unknown as DecodeAttrs, position ? get(position) : undefined);
  const out = decodeReference.cachedAttention(
    get(qkv) as Float32Array,
    get(cache) as Float32Array,
    { b, kv, l, d },
    get(rope) as Float32Array,
    get(starts) as Int32Array,
    a,
  );
  return cpu.makeTensorInfo([qkv.shape[0], a.heads * d], 'float32', out);
};
