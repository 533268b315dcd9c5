import {
  TableKernelNames,
  codeContract,
  fromHalfBits,
  seededRandom,
  softContract,
  tableBackward,
  tableIterate,
  tableIterateLayout,
  tableReference,
  toHalfBits,
} from '@edkm/core';
import * as tf from '@tensorflow/tfjs-core';
import type { ConformanceCase } from './index';
import { hardFloats, randomFloats, runOp } from './util';

/** Conformance cases of the table kernels (TableIterate, TableBackward, CodeContract, SoftContract). */
export function tableCases(): ConformanceCase[] {
  const cases: ConformanceCase[] = [];
  for (const [u, k, iterations, spread, epsilon, tauOverride] of [
    [1, 2, 1, 1, 0, 0],
    [300, 8, 3, 1, 0, 0],
    [5000, 16, 5, 0.1, 0, 0], // bf16-weight-like: many values, 4 bits, a small temperature
    [700, 256, 2, 1, 0, 0],
    [400, 4, 30, 1, 1e-4, 0], // stops early at epsilon
    [2000, 8, 10, 0.02, 1e-6, 1e-12], // a vanishing temperature: Lloyd's k-means
  ] as const) {
    cases.push({
      kernelName: TableKernelNames.TableIterate,
      name: `tableIterate u=${u} k=${k} I=${iterations} epsilon=${epsilon}${tauOverride ? ` tau=${tauOverride}` : ''}`,
      run: async () => {
        const rnd = seededRandom(60 + u);
        const points = Float32Array.from({ length: u }, () => (rnd() * 4 - 2) * spread);
        const counts = Float32Array.from({ length: u }, () => 1 + Math.floor(rnd() * 1000));
        const c0 = Float32Array.from({ length: k }, (_, j) => (-2 + (4 * (j + 0.5)) / k) * spread);
        const tau = tauOverride || 0.05 * spread * spread;
        const t = (a: Float32Array) => tf.tensor2d(a, [a.length, 1]);
        const actual = await runOp(() =>
          tableIterate(t(points), t(counts), tf.tensor2d(c0, [1, k]), tau, iterations, epsilon),
        );
        const layout = tableIterateLayout(u, k, iterations);
        const expected = tableReference.iterateAll(points, counts, c0, {
          tau,
          iterations,
          epsilon,
        });
        // float32 sums and exp on the device against the float64 reference: C_0 … C_T, then T,
        // C_{T−1}; C_T and the outputs (rows past T and the scratch are unspecified)
        const valid = (a: Float32Array) => {
          const rows = (expected[layout.steps] + 1) * k;
          return Float32Array.from([
            ...a.subarray(0, rows),
            ...a.subarray(layout.steps, layout.scratch),
          ]);
        };
        return { actual: valid(actual), expected: valid(expected), tolerance: 2e-5 * spread };
      },
    });
  }
  // a table compacted on the device (DkmTensor.prepareOnDevice): 65,536 rows, the first u real,
  // the rest count 0 and value 0, and `rows` = [u] bounding the loops; the real rows' results are
  // those of the u-row table
  for (const [u, k] of [
    [300, 8],
    [5000, 16],
  ] as const) {
    cases.push({
      kernelName: TableKernelNames.TableIterate,
      name: `tableIterate and tableBackward on ${u} of 65,536 rows (rows bound on the device), k=${k}`,
      run: async () => {
        const rnd = seededRandom(80 + u);
        const points = Float32Array.from({ length: u }, () => rnd() * 0.2 - 0.1);
        const counts = Float32Array.from({ length: u }, () => 1 + Math.floor(rnd() * 100));
        const c0 = Float32Array.from({ length: k }, (_, j) => -0.1 + (0.2 * (j + 0.5)) / k);
        const tau = 0.05 * 0.01;
        const iterations = 3;
        const pad = (a: Float32Array) => {
          const out = new Float32Array(65536);
          out.set(a);
          return tf.tensor2d(out, [65536, 1]);
        };
        const small = (a: Float32Array) => tf.tensor2d(a, [u, 1]);
        const layoutU = tableIterateLayout(u, k, iterations);
        const layoutP = tableIterateLayout(65536, k, iterations);
        const expected = await runOp(() =>
          tableIterate(small(points), small(counts), tf.tensor2d(c0, [1, k]), tau, iterations),
        );
        const padded = await runOp(() =>
          tableIterate(
            pad(points),
            pad(counts),
            tf.tensor2d(c0, [1, k]),
            tau,
            iterations,
            0,
            tf.tensor1d([u]),
          ),
        );
        // C_0 … C_I, T, C_{T−1}; C_T, then the real rows' outputs
        const head = (a: Float32Array, layout: typeof layoutU) => a.subarray(0, layout.output + u);
        const seed = randomFloats(2 * k, rnd);
        const stack = expected.subarray(0, (iterations + 1) * k);
        const backward = (p: tf.Tensor2D, c: tf.Tensor2D, rows?: tf.Tensor1D) =>
          runOp(() =>
            tableBackward(
              tf.tensor2d(seed, [2, k]),
              p,
              c,
              tf.tensor2d(stack, [iterations + 1, k]),
              tau,
              undefined,
              rows,
            ),
          );
        const bExpected = await backward(small(points), small(counts));
        const bPadded = await backward(pad(points), pad(counts), tf.tensor1d([u]));
        const jh = (a: Float32Array) =>
          Float32Array.from({ length: u * 2 }, (_, i) => a[Math.floor(i / 2) * 4 + (i % 2)]);
        const scale = Math.max(...jh(bExpected).map(Math.abs), 1);
        const actual = Float32Array.from([
          ...head(padded, layoutP),
          ...jh(bPadded).map((x) => x / scale),
        ]);
        const want = Float32Array.from([
          ...head(expected, layoutU),
          ...jh(bExpected).map((x) => x / scale),
        ]);
        return { actual, expected: want, tolerance: 2e-4 };
      },
    });
  }
  for (const [u, k, iterations] of [
    [1, 2, 1],
    [300, 8, 3],
    [700, 64, 2],
  ] as const) {
    cases.push({
      kernelName: TableKernelNames.TableBackward,
      name: `tableBackward u=${u} k=${k} T=${iterations}`,
      run: async () => {
        const rnd = seededRandom(40 + u);
        const points = Float32Array.from({ length: u }, () => rnd() * 4 - 2);
        const counts = Float32Array.from({ length: u }, () => 1 + Math.floor(rnd() * 10));
        const c0 = Float32Array.from({ length: k }, (_, j) => -2 + (4 * (j + 0.5)) / k);
        const tau = 0.5;
        const { centroids } = tableReference.iterate(points, counts, c0, {
          tau,
          iterations,
          epsilon: 0,
        });
        const gu = randomFloats(u, rnd);
        const seed = tableReference.seed(
          gu,
          tableReference.contraction(points, centroids, k, tau),
          k,
        );
        const t = (a: Float32Array) => tf.tensor2d(a, [a.length, 1]);
        const backward = (stack: Float32Array, steps?: tf.Tensor1D) =>
          runOp(() =>
            tableBackward(
              tf.tensor2d(seed, [2, k]),
              t(points),
              t(counts),
              tf.tensor2d(stack, [stack.length / k, k]),
              tau,
              steps,
            ),
          );
        const full = await backward(centroids);
        const expected = tableReference.backward(seed, points, counts, centroids, k, tau);
        // T on the device: a taller stack (rows past T are garbage) and steps = [T]
        const tall = new Float32Array((iterations + 3) * k).fill(Number.NaN);
        tall.set(centroids);
        const fromSteps = await backward(tall, tf.tensor1d([iterations]));
        if (
          !full.every(
            (x, i) => x === fromSteps[i] || (Number.isNaN(x) && Number.isNaN(fromSteps[i])),
          )
        )
          throw new Error('tableBackward with steps on the device differs from the exact stack');
        const firstTwo = (a: Float32Array) =>
          Float32Array.from({ length: u * 2 }, (_, i) => a[Math.floor(i / 2) * 4 + (i % 2)]);
        const scale = Math.max(...firstTwo(expected).map(Math.abs), 1);
        return { actual: firstTwo(full), expected: firstTwo(expected), tolerance: 2e-4 * scale };
      },
    });
  }
  for (const dtype of ['bf16', 'fp16'] as const) {
    for (const [n, c] of [
      [5000, 4],
      [70000, 16],
    ] as const) {
      cases.push({
        kernelName: TableKernelNames.CodeContract,
        name: `codeContract ${dtype} n=${n} c=${c}`,
        run: async () => {
          const rnd = seededRandom(60 + c);
          const x = hardFloats(n, rnd, dtype);
          const g = randomFloats(n, rnd);
          const codes = toHalfBits(x, dtype);
          const codeToRow = new Int32Array(65536).fill(-1);
          let rows = 0;
          for (const code of codes)
            if (codeToRow[code] < 0 && rnd() < 0.9) codeToRow[code] = rows++;
          const table = randomFloats(Math.max(rows, 1) * c, rnd);
          const actual = await runOp(() =>
            codeContract(
              tf.tensor2d(table, [Math.max(rows, 1), c]),
              tf.tensor1d(codeToRow, 'int32'),
              tf.tensor1d(x),
              tf.tensor1d(g),
              dtype,
            ),
          );
          const expected = tableReference.codeContract(table, c, codeToRow, codes, g);
          return { actual, expected, tolerance: 1e-5 * Math.sqrt(n) };
        },
      });
    }
  }
  for (const dtype of ['bf16', 'fp16'] as const) {
    for (const [n, k] of [
      [3000, 2],
      [50000, 8],
      [4000, 64],
    ] as const) {
      cases.push({
        kernelName: TableKernelNames.SoftContract,
        name: `softContract ${dtype} n=${n} k=${k}`,
        run: async () => {
          const rnd = seededRandom(80 + k);
          const x = Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * 0.05);
          const g = randomFloats(n, rnd);
          const last = Float32Array.from(
            { length: 2 * k },
            (_, j) => -0.05 + (0.1 * ((j % k) + 0.5)) / k + (j >= k ? 1e-3 : 0),
          );
          const tau = 1e-4;
          const actual = await runOp(() =>
            softContract(tf.tensor1d(x), tf.tensor1d(g), tf.tensor2d(last, [2, k]), { dtype, tau }),
          );
          const expected = tableReference.softContract(
            fromHalfBits(toHalfBits(x, dtype), dtype),
            g,
            last,
            k,
            tau,
          );
          const scale = Math.max(...expected.map(Math.abs), 1);
          return { actual, expected, tolerance: 1e-4 * scale };
        },
      });
    }
  }
  return cases;
}
