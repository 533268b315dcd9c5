import '@edkm/backend-cpu';
import { describe, expect, it } from 'vitest';
import { DTypeError, ShapeError, gatherRows, scatterAddRows, tf, useBackend } from '../src/index';

describe('custom kernel ops', () => {
  it('gatherRows is differentiable in the table (gradient = scatter-add), checked by finite differences', async () => {
    await useBackend('cpu');
    const table = tf.tensor2d([0.5, -1, 2, 3, 0.25, 4], [3, 2]);
    const idx = tf.tensor1d([2, 0, 2, 1], 'int32');
    const weights = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]);
    const f = (t: tf.Tensor) =>
      gatherRows(t as tf.Tensor2D, idx)
        .mul(weights)
        .square()
        .sum() as tf.Scalar;
    const grad = tf.grad(f)(table);
    const g = await grad.data();
    const base = (await table.data()) as Float32Array;
    const h = 1e-2;
    for (let i = 0; i < base.length; i++) {
      const plus = Float32Array.from(base);
      plus[i] += h;
      const minus = Float32Array.from(base);
      minus[i] -= h;
      const fd =
        ((await f(tf.tensor2d(plus, [3, 2])).data())[0] -
          (await f(tf.tensor2d(minus, [3, 2])).data())[0]) /
        (2 * h);
      expect(Math.abs(g[i] - fd)).toBeLessThan(1e-3 * Math.max(1, Math.abs(fd)));
    }
  });

  it('scatterAddRows gradient gathers upstream rows back', async () => {
    await useBackend('cpu');
    const vals = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
    const idx = tf.tensor1d([1, 1, 0], 'int32');
    const up = tf.tensor2d([10, 20, 30, 40], [2, 2]);
    const grad = tf.grad(
      (v: tf.Tensor) =>
        scatterAddRows(v as tf.Tensor2D, idx, 2)
          .mul(up)
          .sum() as tf.Scalar,
    )(vals);
    expect(Array.from(await grad.data())).toEqual([30, 40, 30, 40, 10, 20]);
  });

  it('rejects wrong dtypes and shapes with typed errors', () => {
    const t = tf.tensor2d([1, 2], [1, 2]);
    expect(() => gatherRows(t, tf.tensor1d([0], 'float32') as tf.Tensor1D)).toThrow(DTypeError);
    expect(() =>
      gatherRows(tf.tensor1d([1]) as unknown as tf.Tensor2D, tf.tensor1d([0], 'int32')),
    ).toThrow(ShapeError);
    expect(() => scatterAddRows(t, tf.tensor1d([0, 1], 'int32'), 2)).toThrow(
      /indices must have shape \[1\]/,
    );
    expect(() => scatterAddRows(t, tf.tensor1d([0], 'int32'), 0)).toThrow(
      /numRows must be a positive integer/,
    );
  });
});
