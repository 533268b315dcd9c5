import {
  type Bf16MatMulAttrs,
  bf16Gemv,
  decodeBf16Pairs,
  hostLinearFusion,
  type tf,
} from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

/** y = x · Wᵀ with W [N, K] as bf16 pairs (LinearKernelNames.Bf16MatMul): core's bf16Gemv, one decoded row at a time. */
export const bf16MatMul: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { x, w, g, residual } = inputs as Record<string, tf.TensorInfo>;
  const get = (t: tf.TensorInfo) => cpu.data.get(t.dataId).values as tf.backend_util.TypedArray;
  const f32 = (t?: tf.TensorInfo) => (t ? (get(t) as Float32Array) : undefined);
  const fused = attrs as unknown as Bf16MatMulAttrs;
  const m = x.shape[0];
  const fusion = hostLinearFusion(get(x) as Float32Array, x.shape[1], fused, f32(g));
  const k = fusion.width;
  const i32 = get(w) as Int32Array;
  const words = new Uint32Array(i32.buffer, i32.byteOffset, i32.length);
  const { n } = fused;
  const y = new Float32Array(m * n);
  bf16Gemv(words, fusion.x, m, n, k, y);
  return cpu.makeTensorInfo([m, n], 'float32', fusion.finish(y, f32(residual)));
};

/** Rows of a bf16 pair-packed table [U, K] by id → float32 [N, K] (zero rows out of range). */
export const bf16GatherRows: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { table, ids } = inputs as Record<string, tf.TensorInfo>;
  const { k, u } = attrs as unknown as { k: number; u: number };
  const get = (t: tf.TensorInfo) => cpu.data.get(t.dataId).values as tf.backend_util.TypedArray;
  const i32 = get(table) as Int32Array;
  const words = new Uint32Array(i32.buffer, i32.byteOffset, i32.length);
  const id = get(ids) as Int32Array;
  const out = new Float32Array(id.length * k);
  for (let i = 0; i < id.length; i++)
    if (id[i] >= 0 && id[i] < u)
      decodeBf16Pairs(words, id[i] * k, k, out.subarray(i * k, i * k + k));
  return cpu.makeTensorInfo([id.length, k], 'float32', out);
};
