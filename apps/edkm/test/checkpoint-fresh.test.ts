// What a checkpoint reads is the weights as trained, on every backend. tfjs-webgpu keeps a host
// copy of every tensor it has read; the in-place AdamW must not leave that copy stale, or every
// checkpoint after the first one saves the first one's weights (on the H200 the 3-bit recipe's
// export fell from 29.6 to 36.8 while the training loss stayed the same).
import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import '@edkm/backend-webgpu';
import { optimReference, tf, useBackend } from '@edkm/core';
import { testBackends } from '@edkm/core/testing';
import { describe, expect, it } from 'vitest';
import { AdamW } from '../src/index';

/** Core's plain AdamW reference (the kernels' conformance reference), step by step. */
function reference(w0: number[], grads: number[][], lr: number): { w: number[]; m: number[] }[] {
  let state = {
    w: Float32Array.from(w0),
    m: new Float32Array(w0.length),
    v: new Float32Array(w0.length),
  };
  return grads.map((g, s) => {
    state = optimReference.adamw(state.w, Float32Array.from(g), state.m, state.v, 1, {
      lr,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: 0,
      step: s + 1,
    });
    return { w: Array.from(state.w), m: Array.from(state.m) };
  });
}

describe.each(await testBackends())('AdamW on %s', (backend) => {
  it('a read between steps (a checkpoint) sees every later step', async () => {
    await useBackend(backend);
    const w0 = [0.5, -1, 2, 0.25, -0.75];
    const grads = [
      [0.1, -0.2, 0.3, 0.05, -0.4],
      [0.05, 0.1, -0.4, 0.2, 0.1],
      [-0.3, 0.2, 0.1, -0.1, 0.3],
    ];
    const expected = reference(w0, grads, 0.01);
    const w = tf.variable(tf.tensor1d(w0));
    const opt = new AdamW();
    for (const [s, g] of grads.entries()) {
      const grad = tf.tensor1d(g);
      opt.apply(new Map([['w', w]]), { w: grad }, 0.01);
      grad.dispose();
      // read after every step, as a checkpoint does
      const got = Array.from((await w.data()) as Float32Array);
      got.forEach((x, i) => expect(x).toBeCloseTo(expected[s].w[i], 6));
      // and the optimizer state a checkpoint saves, read after every step too
      const { m } = (await opt.getState()).moments.w;
      Array.from(m).forEach((x, i) => expect(x).toBeCloseTo(expected[s].m[i], 6));
    }
    w.dispose();
  });
});
