import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import '@edkm/backend-webgpu';
import { rmsNormFused, seededRandom, tf, useBackend } from '@edkm/core';
import { testBackends } from '@edkm/core/testing';
import { describe, expect, it } from 'vitest';
import { rmsNormComposed } from '../src/index';

const backends = await testBackends();

const random = (shape: number[], seed: number, scale = 1) => {
  const rnd = seededRandom(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * scale),
    shape,
  );
};
const maxDiff = async (a: tf.Tensor, b: tf.Tensor) =>
  Math.max(...(await tf.sub(a, b).abs().data()));

describe.each(backends)('fused RMSNorm on %s', (backend) => {
  it('equals the composed ops, value and gradients (x and weight)', async () => {
    await useBackend(backend);
    const x = random([2, 3, 40], 1, 2);
    const w = random([40], 2);
    const dy = random([2, 3, 40], 3);
    const grads = (f: typeof rmsNormFused) =>
      tf.grads((a: tf.Tensor, b: tf.Tensor) => f(a, b, 1e-5).mul(dy).sum())([x, w]);
    expect(await maxDiff(rmsNormFused(x, w, 1e-5), rmsNormComposed(x, w, 1e-5))).toBeLessThan(1e-5);
    const [fx, fw] = grads(rmsNormFused);
    const [cx, cw] = grads(rmsNormComposed);
    expect(await maxDiff(fx, cx)).toBeLessThan(1e-4);
    expect(await maxDiff(fw, cw)).toBeLessThan(1e-4);
  });
});

describe('fused RMSNorm gradients against finite differences (cpu)', () => {
  it('d/dx and d/dweight of Σ rmsNorm(x, w)·dy', async () => {
    await useBackend('cpu');
    const C = 6;
    const x0 = Array.from((await random([2, C], 4, 1.5).data()) as Float32Array);
    const w0 = Array.from((await random([C], 5).data()) as Float32Array);
    const dyv = Array.from((await random([2, C], 6).data()) as Float32Array);
    // float64 loss of the float64 formula, differentiated by central differences
    const loss = (x: number[], w: number[]) => {
      let s = 0;
      for (let r = 0; r < 2; r++) {
        let ss = 0;
        for (let c = 0; c < C; c++) ss += x[r * C + c] ** 2;
        const rho = 1 / Math.sqrt(ss / C + 1e-5);
        for (let c = 0; c < C; c++) s += x[r * C + c] * rho * w[c] * dyv[r * C + c];
      }
      return s;
    };
    const h = 1e-4;
    const fd = (v: number[], i: number, f: (v: number[]) => number) => {
      const p = [...v];
      const m = [...v];
      p[i] += h;
      m[i] -= h;
      return (f(p) - f(m)) / (2 * h);
    };
    const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      rmsNormFused(a, b, 1e-5)
        .mul(tf.tensor2d(dyv, [2, C]))
        .sum(),
    )([tf.tensor2d(x0, [2, C]), tf.tensor1d(w0)]);
    const ax = await gx.data();
    const aw = await gw.data();
    for (let i = 0; i < 2 * C; i++)
      expect(ax[i]).toBeCloseTo(
        fd(x0, i, (v) => loss(v, w0)),
        3,
      );
    for (let i = 0; i < C; i++)
      expect(aw[i]).toBeCloseTo(
        fd(w0, i, (v) => loss(x0, v)),
        3,
      );
  });
});
