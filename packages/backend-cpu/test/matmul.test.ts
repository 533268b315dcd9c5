import '../src/index';
import { tf, useBackend } from '@edkm/core';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';

/** float64 reference of matMul over the last two dims, batch dims broadcast (b % batch). */
function reference(
  a: Float32Array,
  aShape: number[],
  b: Float32Array,
  bShape: number[],
  ta: boolean,
  tb: boolean,
): Float64Array {
  const [ra, rb] = [aShape.length, bShape.length];
  const M = ta ? aShape[ra - 1] : aShape[ra - 2];
  const K = ta ? aShape[ra - 2] : aShape[ra - 1];
  const N = tb ? bShape[rb - 2] : bShape[rb - 1];
  const batchA = a.length / (M * K);
  const batchB = b.length / (K * N);
  const batch = Math.max(batchA, batchB);
  const out = new Float64Array(batch * M * N);
  for (let p = 0; p < batch; p++) {
    const oa = (p % batchA) * M * K;
    const ob = (p % batchB) * K * N;
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++)
          s += a[oa + (ta ? k * M + i : i * K + k)] * b[ob + (tb ? j * K + k : k * N + j)];
        out[(p * M + i) * N + j] = s;
      }
  }
  return out;
}

describe('cpu plugin: BatchMatMul', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('equals a float64 reference for every transpose, odd sizes and broadcast batches', () => {
    fc.assert(
      fc.property(
        fc.record({
          M: fc.integer({ min: 1, max: 13 }),
          N: fc.integer({ min: 1, max: 13 }),
          K: fc.integer({ min: 1, max: 600 }),
          batch: fc.constantFrom([], [1], [3], [2, 2]),
          broadcastB: fc.boolean(),
          ta: fc.boolean(),
          tb: fc.boolean(),
        }),
        ({ M, N, K, batch, broadcastB, ta, tb }) => {
          const aShape = [...batch, ...(ta ? [K, M] : [M, K])];
          const bBatch = broadcastB ? batch.map(() => 1) : batch;
          const bShape = [...bBatch, ...(tb ? [N, K] : [K, N])];
          const a = tf.randomUniform(aShape, -1, 1, 'float32', M * 7 + K);
          const b = tf.randomUniform(bShape, -1, 1, 'float32', N * 5 + K);
          const got = tf.matMul(a, b, ta, tb);
          const want = reference(
            a.dataSync() as Float32Array,
            aShape,
            b.dataSync() as Float32Array,
            bShape,
            ta,
            tb,
          );
          expect(got.shape).toEqual([...batch, M, N]);
          const g = got.dataSync();
          for (let i = 0; i < want.length; i++)
            expect(Math.abs(g[i] - want[i])).toBeLessThanOrEqual(1e-5 * Math.sqrt(K) + 1e-6);
          tf.dispose([a, b, got]);
        },
      ),
      { numRuns: 60, seed: 5 },
    );
  });

  it('int32 operands stay int32 and exact', () => {
    const a = tf.tensor2d([[1, 2, 3]], [1, 3], 'int32');
    const b = tf.tensor2d([[4], [5], [6]], [3, 1], 'int32');
    const c = tf.matMul(a, b);
    expect(c.dtype).toBe('int32');
    expect(Array.from(c.dataSync())).toEqual([32]);
  });

  it('gradients through matMul match the float64 reference', () => {
    const a = tf.randomNormal([5, 7], 0, 1, 'float32', 1);
    const b = tf.randomNormal([6, 7], 0, 1, 'float32', 2);
    const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, false, true).sum())([
      a,
      b,
    ]);
    // d/da sum(a·bᵀ) = 1·b (row sums of b), d/db = 1ᵀ·a
    const bSum = tf.sum(b, 0).dataSync();
    const aSum = tf.sum(a, 0).dataSync();
    const dav = da.dataSync();
    const dbv = db.dataSync();
    for (let i = 0; i < 5 * 7; i++) expect(dav[i]).toBeCloseTo(bSum[i % 7], 5);
    for (let i = 0; i < 6 * 7; i++) expect(dbv[i]).toBeCloseTo(aSum[i % 7], 5);
  });
});
