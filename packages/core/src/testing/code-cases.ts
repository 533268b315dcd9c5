import {
  KernelNames,
  codeHistogram,
  gatherAffineByCode,
  gatherByCode,
  reference,
  scatterAddByCode,
  seededRandom,
  toHalfBits,
} from '@edkm/core';
import * as tf from '@tensorflow/tfjs-core';
import type { ConformanceCase } from './index';
import { hardFloats, randomFloats, runOp } from './util';

/** Conformance cases of the kernels keyed by 16-bit codes (CodeHistogram, GatherByCode, ScatterAddByCode, GatherAffineByCode). */
export function codeCases(): ConformanceCase[] {
  const cases: ConformanceCase[] = [];
  for (const dtype of ['bf16', 'fp16'] as const) {
    const codeInput = (n: number, seed: number) => hardFloats(n, seededRandom(seed), dtype);
    cases.push({
      kernelName: KernelNames.CodeHistogram,
      name: `codeHistogram ${dtype}`,
      run: async () => {
        const x = codeInput(5000, 11);
        const actual = await runOp(() => codeHistogram(tf.tensor1d(x), dtype));
        return {
          actual,
          expected: Float32Array.from(reference.codeHistogram(x, dtype)),
          tolerance: 0,
        };
      },
    });
    cases.push({
      kernelName: KernelNames.GatherByCode,
      name: `gatherByCode ${dtype} k=3`,
      run: async () => {
        const rnd = seededRandom(12);
        const x = codeInput(3000, 13);
        const table = randomFloats(65536 * 3, rnd);
        const actual = await runOp(() =>
          gatherByCode(tf.tensor2d(table, [65536, 3]), tf.tensor1d(x), dtype),
        );
        return { actual, expected: reference.gatherByCode(table, x, dtype), tolerance: 0 };
      },
    });
    cases.push({
      kernelName: KernelNames.CodeHistogram,
      name: `codeHistogram ${dtype}, 300,000 weights on few hot codes`,
      run: async () => {
        const rnd = seededRandom(19);
        const x = Float32Array.from({ length: 300000 }, () => (rnd() * 2 - 1) * 0.002);
        const actual = await runOp(() => codeHistogram(tf.tensor1d(x), dtype));
        return {
          actual,
          expected: Float32Array.from(reference.codeHistogram(x, dtype)),
          tolerance: 0,
        };
      },
    });
    for (const n of [3000, 3001]) {
      cases.push({
        kernelName: KernelNames.GatherByCode,
        name: `gatherByCode ${dtype} k=1 n=${n}`,
        run: async () => {
          const rnd = seededRandom(20);
          const x = codeInput(n, 21);
          const table = randomFloats(65536, rnd);
          const actual = await runOp(() =>
            gatherByCode(tf.tensor2d(table, [65536, 1]), tf.tensor1d(x), dtype),
          );
          return { actual, expected: reference.gatherByCode(table, x, dtype), tolerance: 0 };
        },
      });
      for (const inPlace of [false, true]) {
        cases.push({
          kernelName: KernelNames.GatherAffineByCode,
          name: `gatherAffineByCode ${dtype} stride 4 n=${n}${inPlace ? ' in place' : ''}`,
          run: async () => {
            const rnd = seededRandom(22);
            const x = codeInput(n, 23);
            const g = randomFloats(n, rnd);
            const table = randomFloats(65536 * 4, rnd);
            const pairs = new Float32Array(65536 * 2);
            for (let c = 0; c < 65536; c++) pairs.set(table.subarray(4 * c, 4 * c + 2), 2 * c);
            const actual = await runOp(() => {
              // the in-place result is g's own data: g (made here, read by nothing else) is spent
              const gt = tf.tensor1d(g).add(0) as tf.Tensor1D;
              const out = gatherAffineByCode(
                tf.tensor2d(table, [65536, 4]),
                tf.tensor1d(x),
                gt,
                dtype,
                {
                  inPlace,
                },
              );
              gt.dispose();
              return out;
            });
            return {
              actual,
              expected: reference.gatherAffine(pairs, Int32Array.from(toHalfBits(x, dtype)), g),
              tolerance: 2e-7,
            };
          },
        });
      }
    }
    cases.push({
      kernelName: KernelNames.ScatterAddByCode,
      name: `scatterAddByCode ${dtype} k=2`,
      run: async () => {
        const rnd = seededRandom(14);
        const x = codeInput(4000, 15);
        const v = randomFloats(4000 * 2, rnd);
        const actual = await runOp(() =>
          scatterAddByCode(tf.tensor2d(v, [4000, 2]), tf.tensor1d(x), dtype),
        );
        return {
          actual,
          expected: reference.scatterAddByCode(v, x, dtype),
          tolerance: 1e-6 * 4000,
        };
      },
    });
    for (const [label, n, spread] of [
      ['hot codes', 50000, 0.002],
      ['more codes than a workgroup table', 60000, 100],
    ] as const) {
      cases.push({
        kernelName: KernelNames.ScatterAddByCode,
        name: `scatterAddByCode ${dtype} k=1 ${label}`,
        run: async () => {
          const rnd = seededRandom(18);
          const x = Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * spread);
          const v = randomFloats(n, rnd);
          const actual = await runOp(() =>
            scatterAddByCode(tf.tensor2d(v, [n, 1]), tf.tensor1d(x), dtype),
          );
          return {
            actual,
            expected: reference.scatterAddByCode(v, x, dtype),
            tolerance: 1e-6 * Math.sqrt(n) * 8,
          };
        },
      });
    }
    cases.push({
      // sums that cancel to a tiny remainder beside large terms (a gradient's per-code sums):
      // each code gets +a, −a and a small r; the sum must be r, not 0 or a rounding of a
      kernelName: KernelNames.ScatterAddByCode,
      name: `scatterAddByCode ${dtype} k=1 cancellation`,
      run: async () => {
        const rnd = seededRandom(19);
        const codes = 500;
        const x = new Float32Array(codes * 3);
        const v = new Float32Array(codes * 3);
        for (let c = 0; c < codes; c++) {
          const value = 0.01 + c * 0.01;
          const a = (rnd() - 0.5) * 1e3;
          x.set([value, value, value], c * 3);
          v.set([a, -a, (rnd() - 0.5) * 1e-4], c * 3);
        }
        const actual = await runOp(() =>
          scatterAddByCode(tf.tensor2d(v, [codes * 3, 1]), tf.tensor1d(x), dtype),
        );
        return {
          actual,
          expected: reference.scatterAddByCode(v, x, dtype),
          tolerance: 1e-9,
        };
      },
    });
    cases.push({
      kernelName: KernelNames.GatherAffineByCode,
      name: `gatherAffineByCode ${dtype}`,
      run: async () => {
        const rnd = seededRandom(16);
        const x = codeInput(3000, 17);
        const g = randomFloats(3000, rnd);
        const table = randomFloats(65536 * 2, rnd);
        const actual = await runOp(() =>
          gatherAffineByCode(tf.tensor2d(table, [65536, 2]), tf.tensor1d(x), tf.tensor1d(g), dtype),
        );
        return {
          actual,
          expected: reference.gatherAffine(table, Int32Array.from(toHalfBits(x, dtype)), g),
          tolerance: 2e-7,
        };
      },
    });
  }
  return cases;
}
