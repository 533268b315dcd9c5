import { NearestKernelNames, nearestEntry, nearestReference, seededRandom } from '@edkm/core';
import * as tf from '@tensorflow/tfjs-core';
import type { ConformanceCase } from './index';

/**
 * Conformance cases of NearestEntry (JLCM's mapping): the index must match exactly, the Jacobian
 * to float32 rounding. The weights are drawn away from the boundaries between entries (a vector
 * whose two nearest distances are within 1e-3 of each other is redrawn), so that float32 and
 * float64 agree on the nearest entry; one case has duplicate entries (exact ties: the first wins)
 * and a zero scale (every vector maps to 0).
 */
export function nearestCases(): ConformanceCase[] {
  const cases: ConformanceCase[] = [];
  const shapes: { R: number; C: number; d: number; k: number; G: number; ties?: boolean }[] = [
    { R: 3, C: 8, d: 1, k: 4, G: 2 },
    { R: 37, C: 96, d: 1, k: 16, G: 3 },
    { R: 9, C: 64, d: 1, k: 256, G: 2 },
    { R: 6, C: 12, d: 2, k: 8, G: 2 },
    { R: 5, C: 24, d: 4, k: 4, G: 5 },
    { R: 4, C: 6, d: 1, k: 4, G: 1, ties: true },
  ];
  for (const { R, C, d, k, G, ties } of shapes) {
    cases.push({
      kernelName: NearestKernelNames.NearestEntry,
      name: `nearestEntry [${R}, ${C}] d=${d} K=${k} G=${G}${ties ? ' (duplicate entries, a zero scale)' : ''}`,
      run: async () => {
        const rnd = seededRandom(R * 101 + C * 7 + d + k);
        const sym = () => rnd() * 2 - 1;
        const table = Float32Array.from({ length: G * k * d }, sym);
        if (ties) table.set([0.5, 0.5, -0.25, 0.25]); // entries 0 and 1 equal
        const inv = Float32Array.from({ length: R }, () => 0.5 + 2 * rnd());
        if (ties) inv[2] = 0;
        const groups = Int32Array.from({ length: R }, (_, r) => r % G);
        const tau = Float32Array.from({ length: G }, () => 0.05 + 0.2 * rnd());
        const x = new Float32Array(R * C);
        const perRow = C / d;
        const entry = (r: number, j: number, b: number) => table[(groups[r] * k + j) * d + b];
        for (let r = 0; r < R; r++)
          for (let v = 0; v < perRow; v++) {
            for (let attempt = 0; ; attempt++) {
              for (let b = 0; b < d; b++) x[r * C + v * d + b] = (1.2 * sym()) / (inv[r] || 1);
              const dist = Array.from({ length: k }, (_, j) => {
                let s = 0;
                for (let b = 0; b < d; b++)
                  s += (x[r * C + v * d + b] * inv[r] - entry(r, j, b)) ** 2;
                return s;
              });
              const sorted = [...dist].sort((a, b) => a - b);
              // exact ties between equal entries are wanted; near ties between distinct ones are not
              const distinct = sorted.find((s) => s !== sorted[0]) ?? Number.POSITIVE_INFINITY;
              if (distinct - sorted[0] > 1e-3 || attempt > 100) break;
            }
          }
        const t = {
          x: tf.tensor2d(x, [R, C]),
          inv: tf.tensor1d(inv),
          table: tf.tensor2d(table, [G, k * d]),
          groups: tf.tensor1d(groups, 'int32'),
          tau: tf.tensor1d(tau),
        };
        const { index, jacobian } = nearestEntry(t.x, t.inv, t.table, t.groups, t.tau, d);
        const n = (R * C) / d;
        const actual = new Float32Array(n + n * d * d);
        actual.set(await index.data(), 0);
        actual.set(await jacobian.data(), n);
        tf.dispose([...Object.values(t), index, jacobian]);
        const ref = nearestReference.nearestEntry(x, inv, table, groups, tau, R, C, d);
        const expected = new Float32Array(n + n * d * d);
        expected.set(ref.index, 0);
        expected.set(ref.jacobian, n);
        // float32 rounding of sums of K terms, relative to the largest entry of J
        const largest = ref.jacobian.reduce((m, v) => Math.max(m, Math.abs(v)), 1);
        return { actual, expected, tolerance: 2e-5 * largest };
      },
    });
  }
  return cases;
}
