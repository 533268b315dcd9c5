import * as tf from '@tensorflow/tfjs-core';
import type { ConformanceCase } from './index';

/** op(a)[z % batchA] · op(b)[z % batchB], summed in float64. */
export function matMulReference(
  a: Float32Array,
  b: Float32Array,
  s: { m: number; n: number; k: number; batchA: number; batchB: number },
  transposeA: boolean,
  transposeB: boolean,
): Float32Array {
  const { m, n, k } = s;
  const batch = Math.max(s.batchA, s.batchB);
  const out = new Float32Array(batch * m * n);
  for (let z = 0; z < batch; z++) {
    const ao = (z % s.batchA) * m * k;
    const bo = (z % s.batchB) * k * n;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++)
          sum +=
            a[ao + (transposeA ? p * m + i : i * k + p)] *
            b[bo + (transposeB ? j * k + p : p * n + j)];
        out[z * m * n + i * n + j] = sum;
      }
  }
  return out;
}

/**
 * tf.matMul (tfjs's BatchMatMul, which backends replace with their own GEMM) in every transposed
 * form, on sizes that are not multiples of any tile, with a broadcast batch, and a 2-D product.
 */
export function matMulCases(rnd: () => number): ConformanceCase[] {
  const cases: ConformanceCase[] = [];
  const shapes = [
    { m: 68, n: 132, k: 52, batchA: 3, batchB: 1 },
    { m: 3, n: 7, k: 5, batchA: 1, batchB: 1 },
  ];
  for (const s of shapes)
    for (const [tA, tB] of [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ]) {
      cases.push({
        kernelName: 'BatchMatMul',
        name: `matMul ${s.batchA}×${s.m}×${s.k} · ${s.batchB}×${s.k}×${s.n} transposeA=${tA} transposeB=${tB}`,
        run: async () => {
          const av = Float32Array.from({ length: s.batchA * s.m * s.k }, () => rnd() * 2 - 1);
          const bv = Float32Array.from({ length: s.batchB * s.k * s.n }, () => rnd() * 2 - 1);
          const flat = s.batchA === 1 && s.batchB === 1; // a 2-D product
          const shapeA = tA ? [s.k, s.m] : [s.m, s.k];
          const shapeB = tB ? [s.n, s.k] : [s.k, s.n];
          const out = tf.tidy(() =>
            tf.matMul(
              tf.tensor(av, flat ? shapeA : [s.batchA, ...shapeA]),
              tf.tensor(bv, flat ? shapeB : [s.batchB, ...shapeB]),
              tA,
              tB,
            ),
          );
          const actual = Float32Array.from((await out.data()) as Float32Array);
          out.dispose();
          const expected = matMulReference(av, bv, s, tA, tB);
          return { actual, expected, tolerance: 1e-5 * s.k + 1e-6 };
        },
      });
    }
  return cases;
}
