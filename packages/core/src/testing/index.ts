import {
  KernelNames,
  TableKernelNames,
  codeContract,
  codeHistogram,
  fromHalfBits,
  gatherAffine,
  gatherAffineByCode,
  gatherByCode,
  gatherRows,
  getPlugin,
  listPlugins,
  reference,
  scatterAddByCode,
  scatterAddRows,
  seededRandom,
  softContract,
  tableBackward,
  tableIterate,
  tableIterateLayout,
  tableReference,
  toHalfBits,
  useBackend,
} from '@edkm/core';
import * as tf from '@tensorflow/tfjs-core';
import { decodeCases, linearCases } from './linear-cases';
import { matMulCases } from './matmul';
import { normCases } from './norm';
import { optimCases } from './optim';

/** One check of one custom kernel: inputs, the reference output and how close a backend must be. */
export interface ConformanceCase {
  kernelName: string;
  name: string;
  /** Runs the kernel on the active backend; returns [actual, expected] as flat arrays. */
  run: () => Promise<{ actual: Float32Array; expected: Float32Array; tolerance: number }>;
}

export interface ConformanceResult {
  kernelName: string;
  name: string;
  passed: boolean;
  maxAbsError: number;
  message?: string;
}

export interface ConformanceReport {
  backend: string;
  results: ConformanceResult[];
  failures: ConformanceResult[];
}

function randomFloats(n: number, rnd: () => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rnd() * 2 - 1;
  return a;
}

function randomIndices(n: number, range: number, rnd: () => number, skew = false): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = skew && rnd() < 0.8 ? 0 : Math.floor(rnd() * range);
  return a;
}

/**
 * Floats that exercise 16-bit rounding: LLM-like weights, exact halfway points (ties to even),
 * ±0, fp16 subnormals and overflow, ±Inf and NaN.
 */
function hardFloats(n: number, rnd: () => number, dtype: 'bf16' | 'fp16'): Float32Array {
  const a = new Float32Array(n);
  const bits = new Uint32Array(a.buffer);
  const shift = dtype === 'bf16' ? 16 : 13;
  for (let i = 0; i < n; i++) {
    const kind = i % 8;
    if (kind < 4) a[i] = (rnd() * 2 - 1) * 0.05;
    else if (kind === 4) {
      a[i] = (rnd() * 2 - 1) * 2;
      bits[i] = (bits[i] & ~((1 << shift) - 1)) | (1 << (shift - 1)); // exactly halfway
    } else if (kind === 5) a[i] = (rnd() * 2 - 1) * 1e-6;
    else if (kind === 6) a[i] = (rnd() * 2 - 1) * 1e5;
    else a[i] = [0, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN][i % 5];
  }
  return a;
}

async function runOp(fn: () => tf.Tensor): Promise<Float32Array> {
  const out = tf.tidy(fn);
  const data = (await out.data()) as Float32Array;
  out.dispose();
  return Float32Array.from(data);
}

const shapes: { n: number; u: number; k: number; skew?: boolean }[] = [
  { n: 1, u: 1, k: 1 },
  { n: 7, u: 3, k: 5 },
  { n: 1000, u: 37, k: 8 },
  { n: 4099, u: 256, k: 16 },
  { n: 20000, u: 5, k: 4, skew: true }, // most rows hit one bucket: contention for scatter-add
  { n: 3000, u: 65536, k: 2 },
];

/** Every conformance case of the project's custom kernels. */
export function conformanceCases(): ConformanceCase[] {
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
  cases.push(...linearCases(), ...decodeCases());
  cases.push(...optimCases(), ...normCases());
  cases.push(...matMulCases(seededRandom(21)));
  return cases;
}

/**
 * Runs every custom kernel on the named tfjs backend (or backend plugin) and compares it with the
 * plain reference. Restores the previously active backend afterwards.
 */
export async function runConformance(
  backend: string,
  cases = conformanceCases(),
): Promise<ConformanceReport> {
  const previous = tf.getBackend();
  if (getPlugin(backend)) await useBackend(backend);
  else if (!(await tf.setBackend(backend)))
    throw new Error(`backend '${backend}' could not be set`);
  const results: ConformanceResult[] = [];
  try {
    for (const c of cases) {
      try {
        const { actual, expected, tolerance } = await c.run();
        if (actual.length !== expected.length) {
          results.push({
            ...pick(c),
            passed: false,
            maxAbsError: Number.POSITIVE_INFINITY,
            message: `length ${actual.length} != ${expected.length}`,
          });
          continue;
        }
        let maxAbsError = 0;
        let worst = -1;
        for (let i = 0; i < actual.length; i++) {
          const err = Math.abs(actual[i] - expected[i]);
          if (!(err <= maxAbsError)) {
            maxAbsError = Number.isNaN(err) ? Number.POSITIVE_INFINITY : err;
            worst = i;
          }
        }
        const passed = maxAbsError <= tolerance;
        results.push({
          ...pick(c),
          passed,
          maxAbsError,
          message: passed
            ? undefined
            : `element ${worst}: got ${actual[worst]}, expected ${expected[worst]} (tolerance ${tolerance})`,
        });
      } catch (err) {
        results.push({
          ...pick(c),
          passed: false,
          maxAbsError: Number.POSITIVE_INFINITY,
          message: err instanceof Error ? err.message : String(err),
        });
      }
    }
  } finally {
    if (previous && previous !== tf.getBackend()) await tf.setBackend(previous);
  }
  return { backend, results, failures: results.filter((r) => !r.passed) };
}

function pick(c: ConformanceCase): { kernelName: string; name: string } {
  return { kernelName: c.kernelName, name: c.name };
}

/**
 * The backends a test file should run its backend-dependent tests on: every registered plugin
 * whose init succeeds; one that fails is skipped and the reason reported (see `reportSkipped`).
 * With EDKM_TEST_BACKENDS=cpu,wasm,webgpu only those are used and a registered
 * one that fails to start throws, so that CI cannot silently skip WebGPU. A listed plugin that the
 * test file does not import is not tested there.
 */
export async function testBackends(): Promise<string[]> {
  const required = (globalThis as { process?: { env?: Record<string, string | undefined> } })
    .process?.env?.EDKM_TEST_BACKENDS;
  // e.g. 'cpu,wasm,webgpu' (spaces and empty entries ignored)
  const requiredNames = required
    ? new Set(
        required
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      )
    : undefined;
  const usable: string[] = [];
  // lowest priority last, so that the file's default backend after this call is the best one
  for (const plugin of listPlugins().reverse()) {
    if (requiredNames && !requiredNames.has(plugin.name)) continue;
    try {
      await useBackend(plugin.name);
      usable.push(plugin.name);
    } catch (err) {
      if (requiredNames) throw err;
      await reportSkipped(plugin.name, err instanceof Error ? err.message : String(err));
    }
  }
  return usable;
}

/**
 * Says why a backend's tests are skipped. Under `pnpm test` (scripts/test.mjs sets
 * EDKM_TEST_SKIP_LOG) the reason goes to that file and the runner prints each distinct reason once,
 * in one line; a file run alone by vitest prints it on stderr.
 */
async function reportSkipped(plugin: string, reason: string): Promise<void> {
  const line = `${plugin}: ${reason.replace(/\s+/g, ' ')}`;
  const log = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process
    ?.env?.EDKM_TEST_SKIP_LOG;
  if (log) {
    const { appendFileSync } = await import('node:fs');
    appendFileSync(log, `${line}\n`);
  } else {
    console.warn(
      `skipping the ${plugin} tests of this file (${line}); EDKM_TEST_BACKENDS=cpu,wasm,${plugin} makes this an error`,
    );
  }
}

export { seededRandom };
