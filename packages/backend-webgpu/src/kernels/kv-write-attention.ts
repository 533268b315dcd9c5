import { type DecodeAttrs, kvWriteThenAttention, type tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { cachedAttention, mergeSplits } from './cached-attention';
import { subgroupAttention, useSubgroupAttention } from './cached-attention-subgroup';
import { kvWrite } from './kv-write';

const twoKernels = kvWriteThenAttention(kvWrite, cachedAttention);
let fused = true;
/** Whether decoding steps take the one-kernel form (A/B: EDKM_KV_FUSE=0 in Node). */
export function setKvWriteFusion(on: boolean): void {
  fused = on;
}

/**
 * DecodeKernelNames.KvWriteAttention: with one new position a row (decoding) where the attention
 * runs on subgroups, one kernel that writes the cache as it attends (subgroupAttentionWgsl's
 * `write`): one dispatch a layer fewer in a decode step. Otherwise KvWrite, then CachedAttention.
 */
export const kvWriteAttention: tf.KernelFunc = (args) => {
  const { inputs, backend, attrs } = args;
  const { qkv, cache, rope, starts, position } = inputs as Record<string, tf.TensorInfo>;
  const [, b, , , d] = cache.shape;
  if (!fused || !useSubgroupAttention(d) || qkv.shape[0] !== b) return twoKernels(args);
  const gpu = backend as WebGPUBackend;
  const a = attrs as unknown as DecodeAttrs;
  const { out, splits } = subgroupAttention(gpu, { qkv, cache, rope, starts, position }, a, true);
  return mergeSplits(gpu, out, splits, qkv.shape[0], a.heads, d);
};
