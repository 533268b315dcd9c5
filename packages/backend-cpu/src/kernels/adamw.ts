import { type AdamWAttrs, optimReference, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

/** EdkmAdamW: one AdamW step of one parameter; w, m and v are updated in place. */
export const adamw: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { w, g, m, v, clip, sched } = inputs as Record<string, tf.TensorInfo>;
  const get = (t: tf.TensorInfo) => cpu.data.get(t.dataId).values as Float32Array;
  const [W, M, V] = [get(w), get(m), get(v)];
  const next = optimReference.adamw(
    W,
    get(g),
    M,
    V,
    get(clip)[1],
    attrs as unknown as AdamWAttrs,
    sched ? get(sched) : undefined,
  );
  W.set(next.w);
  M.set(next.m);
  V.set(next.v);
  cpu.incRef(w.dataId);
  return { dataId: w.dataId, shape: w.shape, dtype: 'float32' };
};
