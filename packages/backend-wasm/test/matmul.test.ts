import { backendBytes, seededRandom, tf, useBackend } from '@edkm/core';
import { describe, expect, it } from 'vitest';
import '../src/index';

/** Plain float64 reference of a batched product with numpy broadcasting of the batch dims. */
function reference(
  a: Float32Array,
  aShape: number[],
  b: Float32Array,
  bShape: number[],
  ta: boolean,
  tb: boolean,
): { out: Float64Array; shape: number[] } {
  const ra = aShape.length;
  const rb = bShape.length;
  const m = ta ? aShape[ra - 1] : aShape[ra - 2];
  const k = ta ? aShape[ra - 2] : aShape[ra - 1];
  const n = tb ? bShape[rb - 2] : bShape[rb - 1];
  const batchA = aShape.slice(0, -2).reduce((x, y) => x * y, 1);
  const batchB = bShape.slice(0, -2).reduce((x, y) => x * y, 1);
  const batch = Math.max(batchA, batchB);
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(
    aShape.slice(0, -2),
    bShape.slice(0, -2),
  );
  const out = new Float64Array(batch * m * n);
  for (let p = 0; p < batch; p++) {
    const ao = (batchA === 1 ? 0 : p) * m * k;
    const bo = (batchB === 1 ? 0 : p) * k * n;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++)
          s += a[ao + (ta ? q * m + i : i * k + q)] * b[bo + (tb ? j * k + q : q * n + j)];
        out[p * m * n + i * n + j] = s;
      }
  }
  return { out, shape: [...outer, m, n] };
}

const rand = (n: number, seed: number) => {
  const r = seededRandom(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
};

describe('wasm plugin: BatchMatMul on XNNPACK for every layout', () => {
  const cases: [number[], number[], boolean, boolean][] = [
    [[5, 7], [7, 3], false, false],
    [[7, 5], [7, 3], true, false],
    [[5, 7], [3, 7], false, true],
    [[7, 5], [3, 7], true, true],
    [[1, 288], [768, 288], false, true], // decoding: one token through x · Wᵀ
    [[2, 3, 6, 4], [2, 3, 4, 5], false, false], // attention-like batches
    [[2, 3, 4, 6], [2, 3, 5, 4], true, true],
    [[1, 6, 4], [3, 4, 5], false, false], // broadcast batch of a
    [[3, 6, 4], [4, 5], false, false], // rank-2 b against a batch
    [[3, 6, 4], [1, 5, 4], false, true],
    [[64, 96], [96, 130], false, false],
  ];
  for (const [aShape, bShape, ta, tb] of cases) {
    it(`[${aShape}]${ta ? 'ᵀ' : ''} · [${bShape}]${tb ? 'ᵀ' : ''}`, async () => {
      await useBackend('wasm');
      const av = rand(
        aShape.reduce((x, y) => x * y, 1),
        1,
      );
      const bv = rand(
        bShape.reduce((x, y) => x * y, 1),
        2,
      );
      const got = tf.matMul(tf.tensor(av, aShape), tf.tensor(bv, bShape), ta, tb);
      const want = reference(av, aShape, bv, bShape, ta, tb);
      expect(got.shape).toEqual(want.shape);
      const g = await got.data();
      const k = ta ? aShape[aShape.length - 2] : aShape[aShape.length - 1];
      g.forEach((v, i) => expect(Math.abs(v - want.out[i])).toBeLessThan(1e-5 * k));
    });
  }

  it('gives matMul its gradients (finite differences)', async () => {
    await useBackend('wasm');
    const a = tf.tensor(rand(12, 3), [3, 4]);
    const b = tf.tensor(rand(20, 4), [5, 4]);
    const y = tf.tensor(rand(15, 5), [3, 5]);
    const f = (x: tf.Tensor, w: tf.Tensor) => tf.matMul(x, w, false, true).mul(y).sum();
    const [da, db] = tf.grads(f)([a, b]);
    const h = 1e-2;
    for (const [which, t, d] of [
      [0, a, da],
      [1, b, db],
    ] as const) {
      const base = await t.data();
      const grad = await d.data();
      for (let i = 0; i < base.length; i += 3) {
        const plus = Float32Array.from(base);
        const minus = Float32Array.from(base);
        plus[i] += h;
        minus[i] -= h;
        const at = (v: Float32Array) =>
          which === 0
            ? f(tf.tensor(v, a.shape), b).dataSync()[0]
            : f(a, tf.tensor(v, b.shape)).dataSync()[0];
        expect(grad[i]).toBeCloseTo((at(plus) - at(minus)) / (2 * h), 2);
      }
    }
  });

  it('caches a transposed weight for one-token products and frees it with the weight', async () => {
    await useBackend('wasm');
    const start = backendBytes();
    const w = tf.tensor(rand(768 * 288, 5), [768, 288]);
    const x = tf.tensor(rand(288, 6), [1, 288]);
    const y1 = tf.matMul(x, w, false, true);
    const y2 = tf.matMul(x, w, false, true); // the cached copy
    expect(Array.from(await y1.data())).toEqual(Array.from(await y2.data()));
    expect(backendBytes() - start).toBe(4 * (768 * 288 * 2 + 288 + 768 * 2));
    tf.dispose([w, x, y1, y2]);
    expect(backendBytes()).toBe(start);
  });
});
