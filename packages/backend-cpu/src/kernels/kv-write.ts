import { type DecodeAttrs, decodePosition, decodeReference, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

/** DecodeKernelNames.KvWrite: the new keys (RoPE applied) and values into the cache, in place. */
export const kvWrite: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { cache, qkv, rope, starts, position } = inputs as Record<string, tf.TensorInfo>;
  const get = (t: tf.TensorInfo) => cpu.data.get(t.dataId).values as tf.backend_util.TypedArray;
  const [, b, kv, l, d] = cache.shape;
  decodeReference.kvWrite(
    get(cache) as Float32Array,
    { b, kv, l, d },
    get(qkv) as Float32Array,
    get(rope) as Float32Array,
    get(starts) as Int32Array,
    decodePosition(attrs as unknown as DecodeAttrs, position ? get(position) : undefined),
  );
  cpu.incRef(cache.dataId);
  return { dataId: cache.dataId, shape: cache.shape, dtype: 'float32' };
};
