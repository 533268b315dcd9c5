import {
  KernelNames,
  gatherAffine,
  gatherRows,
  reference,
  scatterAddRows,
  seededRandom,
} from '@edkm/core';
import * as tf from '@tensorflow/tfjs-core';
import type { ConformanceCase } from './index';
import { randomFloats, randomIndices, runOp } from './util';

const shapes: { n: number; u: number; k: number; skew?: boolean }[] = [
  { n: 1, u: 1, k: 1 },
  { n: 7, u: 3, k: 5 },
  { n: 1000, u: 37, k: 8 },
  { n: 4099, u: 256, k: 16 },
  { n: 20000, u: 5, k: 4, skew: true }, // most rows hit one bucket: contention for scatter-add
  { n: 3000, u: 65536, k: 2 },
];

/** Conformance cases of GatherRows, ScatterAddRows and GatherAffine. */
export function rowCases(): ConformanceCase[] {
  const cases: ConformanceCase[] = [];
  for (const [i, s] of shapes.entries()) {
    const label = `n=${s.n} u=${s.u} k=${s.k}${s.skew ? ' skewed' : ''}`;
    cases.push({
      kernelName: KernelNames.GatherRows,
      name: `gatherRows ${label}`,
      run: async () => {
        const rnd = seededRandom(1000 + i);
        const table = randomFloats(s.u * s.k, rnd);
        const indices = randomIndices(s.n, s.u, rnd, s.skew);
        const actual = await runOp(() =>
          gatherRows(tf.tensor2d(table, [s.u, s.k]), tf.tensor1d(indices, 'int32')),
        );
        return { actual, expected: reference.gatherRows(table, s.k, indices), tolerance: 0 };
      },
    });
    cases.push({
      kernelName: KernelNames.ScatterAddRows,
      name: `scatterAddRows ${label}`,
      run: async () => {
        const rnd = seededRandom(2000 + i);
        const values = randomFloats(s.n * s.k, rnd);
        const indices = randomIndices(s.n, s.u, rnd, s.skew);
        const actual = await runOp(() =>
          scatterAddRows(tf.tensor2d(values, [s.n, s.k]), tf.tensor1d(indices, 'int32'), s.u),
        );
        // float sums in another order differ by rounding: allow a few ulps of the partial sums
        return {
          actual,
          expected: reference.scatterAddRows(values, s.k, indices, s.u),
          tolerance: 1e-6 * s.n,
        };
      },
    });
  }
  for (const [i, s] of shapes.entries()) {
    cases.push({
      kernelName: KernelNames.GatherAffine,
      name: `gatherAffine n=${s.n} u=${s.u}`,
      run: async () => {
        const rnd = seededRandom(3000 + i);
        const table = randomFloats(s.u * 2, rnd);
        const indices = randomIndices(s.n, s.u, rnd, s.skew);
        if (s.n > 2) indices[1] = -1; // out of range: 0
        const x = randomFloats(s.n, rnd);
        const actual = await runOp(() =>
          gatherAffine(tf.tensor2d(table, [s.u, 2]), tf.tensor1d(indices, 'int32'), tf.tensor1d(x)),
        );
        // a fused multiply-add may round once instead of twice
        return { actual, expected: reference.gatherAffine(table, indices, x), tolerance: 2e-7 };
      },
    });
  }
  cases.push({
    kernelName: KernelNames.GatherRows,
    name: 'gatherRows out-of-range indices give zero rows',
    run: async () => {
      const table = Float32Array.from([1, 2, 3, 4, 5, 6]);
      const indices = Int32Array.from([2, -1, 3, 0, 1]);
      const actual = await runOp(() =>
        gatherRows(tf.tensor2d(table, [3, 2]), tf.tensor1d(indices, 'int32')),
      );
      return { actual, expected: reference.gatherRows(table, 2, indices), tolerance: 0 };
    },
  });
  return cases;
}
