import { type AdamWAttrs, adamwStepValues, type tf } from '@edkm/core';
import { f32, wasmOf } from '../heap';
import { forgetTransposed } from './BatchMatMul';

/** EdkmAdamW: one AdamW step of one parameter; w, m and v are updated in place on the heap. */
export const adamw: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { w, g, m, v, clip, sched } = inputs as Record<string, tf.TensorInfo>;
  const a = attrs as unknown as AdamWAttrs;
  // the schedule from a device tensor (adamwSchedule's layout) or from the attrs
  const [lr, decay, c1, c2] = sched ? Array.from(f32(wasm, sched)) : adamwStepValues(a);
  const [W, G, M, V] = [f32(wasm, w), f32(wasm, g), f32(wasm, m), f32(wasm, v)];
  const scale = f32(wasm, clip)[1];
  for (let i = 0; i < W.length; i++) {
    const gi = G[i] * scale;
    const mi = a.beta1 * M[i] + (1 - a.beta1) * gi;
    const vi = a.beta2 * V[i] + (1 - a.beta2) * gi * gi;
    M[i] = mi;
    V[i] = vi;
    W[i] = W[i] * decay - (lr * (Math.fround(mi) / c1)) / (Math.sqrt(Math.fround(vi) / c2) + a.eps);
  }
  forgetTransposed(wasm, w.dataId); // the weight changed in place: a cached transposed copy is stale
  wasm.incRef(w.dataId);
  return { dataId: w.dataId, shape: w.shape, dtype: 'float32' };
};
