// Issue #25 step 2: core's split-precision product `splitMatMul` (each float row as
// scale·(hi + lo/256), three int8 tensor-core products and a rescale) against our f32 GEMM, for
// speed at LLaMA-7B training shapes and for error against a float64 reference beside a host
// emulation of PyTorch's bf16 autocast. The PyTorch twin is bench/torch/torch_split_ref.py (its real
// bf16-autocast error on the matrices written by --dump, and cuBLAS bf16/f32 speed).
//
// Usage: tsx split.ts [--backend webgpu|cpu] [--shapes MxNxK,...] [--reps 10 (2 on a CPU)]
//        [--error-shapes MxNxK,...] [--error-rows 64] [--outliers 6] [--seed 1] [--dump DIR]
//        [--no-steps] [--int8-route auto|plain|emulate]
//   `precision` (webgpu): the same NT product as training runs it, tf.matMul under
//   setMatMulPrecision('split') (the fused kernel; EDKM_SPLIT_KERNEL=three for three products,
//   EDKM_INT8_SPLIT_SPEC for another fused variant).
//   Shapes are MxNxK, C[M,N] = A·Bᵀ with A [M,K] and B [N,K] (NT: a linear layer's forward x·Wᵀ).
//   Speed: warm-up, then the median over 5 rounds of --reps back-to-back runs, one sync at the end
//   (wall ms; effective TFLOP/s = 2·M·N·K / time); where the backend records device graphs
//   (webgpu), also the replayed graph's wall time and, with timestamp queries, each kernel's GPU
//   time (DeviceGraph.profile; EDKM_DAWN_FLAGS=disable-dawn-features=timestamp_quantization for
//   unquantized timestamps). `steps`: each step of the split product timed alone (quantize A and
//   B, one of the three int8 products, the rescale). Tensor cores need EDKM_WEBGPU_UNSAFE=1 and
//   whole 128×128 tiles with K a multiple of 64: `int8Route` says which form the products took
//   (--int8-route emulate: the tiled kernel in plain WGSL, to check it on lavapipe; plain: the loop).
//   Error: A ~ N(0, 1) with --outliers columns ×20 (LLaMA activations), B ~ N(0, 0.02²) (weights,
//   not rounded to bf16), seeded; over --error-rows evenly spaced rows × all columns, relative RMS
//   error (‖C − ref‖ / ‖ref‖) and max |C − ref| against a float64 reference of
//   (a) splitMatMul, (b) our f32 tf.matMul, (c) bf16 autocast emulated on the host (inputs rounded to
//   bf16, products summed in float64, the output rounded to bf16: cuBLAS sums in float32, so this is
//   a lower bound of PyTorch's error). --dump DIR writes the first error shape's matrices as
//   DIR/a.f32 and DIR/b.f32 (raw little-endian float32, row-major) and DIR/header.json (shapes,
//   seed, sampled rows, our errors) for torch_split_ref.py.
import '@edkm/backend-cpu';
import '@edkm/backend-webgpu';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  type Int8Route,
  getWebGPUDeviceInfo,
  int8MatMulRoute,
  int8SplitRoute,
  setInt8Route,
  setMatMulPrecision,
} from '@edkm/backend-webgpu';
import {
  canCaptureGraph,
  captureGraph,
  fromHalfBits,
  int8MatMul,
  int8Rescale,
  makeResident,
  quantizeRowsInt8,
  seededRandom,
  splitMatMul,
  tf,
  toHalfBits,
  useBackend,
} from '@edkm/core';
import { argNumber, argValue, printJson, sync, warmUpGpu } from './util';

// LLaMA-7B's linears over 2048 tokens (q/k/v/o, gate/up, down) and a square one
const SPEED_SHAPES = '2048x4096x4096,2048x11008x4096,2048x4096x11008,4096x4096x4096';
const ERROR_SHAPES = '256x4096x4096,256x4096x11008';

const started = performance.now();
const parseShapes = (s: string) =>
  s
    .split(',')
    .filter(Boolean)
    .map((x) => {
      const d = x.split('x').map(Number);
      if (d.length !== 3 || !d.every((v) => Number.isInteger(v) && v > 0))
        throw new Error(`a shape is MxNxK, got ${x}`);
      return d as [number, number, number];
    });
const speedShapes = parseShapes(argValue('shapes') ?? SPEED_SHAPES);
const errorShapes = parseShapes(argValue('error-shapes') ?? ERROR_SHAPES);
const errorRows = Math.max(1, argNumber('error-rows', 64));
const outliers = Math.max(0, argNumber('outliers', 6));
const OUTLIER_FACTOR = 20;
const B_STD = 0.02;
const seed = argNumber('seed', 1);
const dumpDir = argValue('dump');
const withSteps = !process.argv.includes('--no-steps');

const backendName = argValue('backend') ?? 'webgpu';
const selection = await useBackend(backendName);
const webgpu = selection.tfjsBackend === 'webgpu';
const info = webgpu ? getWebGPUDeviceInfo() : undefined;
const int8RouteFlag = (argValue('int8-route') ?? 'auto') as Int8Route;
if (webgpu) setInt8Route(int8RouteFlag);
// (2 by default on a CPU: lavapipe or the host plugins, where one product takes long)
const reps = Math.max(1, argNumber('reps', webgpu && !info?.software ? 10 : 2));
/** The form the int8 products of an M×N×K split product take (webgpu only). */
const route = (m: number, n: number, k: number) =>
  webgpu ? int8MatMulRoute(m, n, k) : `host (${selection.plugin} plugin)`;
const round3 = (v: number) => +v.toFixed(3);
const tflops = (m: number, n: number, k: number, ms: number) =>
  Number(((2 * m * n * k) / ms / 1e9).toPrecision(4));

type Out = tf.Tensor | tf.Tensor[];
const list = (o: Out) => (Array.isArray(o) ? o : [o]);

/**
 * Median over 5 rounds of the milliseconds of one run of `run` in `reps` back-to-back runs, after a
 * warm-up run that compiles the shaders (one sync at the end of each round).
 */
async function time(run: () => Out): Promise<number> {
  const warm = list(run());
  await sync(warm[warm.length - 1]);
  tf.dispose(warm);
  const times: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    let last: tf.Tensor[] = [];
    for (let i = 0; i < reps; i++) {
      tf.dispose(last);
      last = list(run());
    }
    await sync(last[last.length - 1]);
    tf.dispose(last);
    times.push((performance.now() - t0) / reps);
  }
  return times.sort((x, y) => x - y)[2];
}

/**
 * The product recorded once as a device graph and replayed: wall ms per replay (median of 5
 * rounds of `reps`) and, with timestamp queries, the GPU time of each kernel of one replay.
 * Undefined where the backend cannot record.
 */
async function graphTime(run: () => tf.Tensor) {
  if (!canCaptureGraph()) return undefined;
  let out: tf.Tensor | undefined;
  const graph = captureGraph(() => {
    out = run();
  });
  if (!graph || !out) {
    graph?.dispose();
    out?.dispose();
    return undefined;
  }
  const o = out;
  try {
    graph.run();
    await sync(o);
    const times: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) graph.run();
      await sync(o);
      times.push((performance.now() - t0) / reps);
    }
    const prof = await graph.profile?.();
    return {
      ms: round3(times.sort((x, y) => x - y)[2]),
      dispatches: graph.dispatches,
      gpu: prof
        ? {
            ms: round3(prof.gpuMicroseconds / 1000),
            byKernel: prof.byKernel.map((k) => ({
              name: k.name,
              dispatches: k.dispatches,
              ms: round3(k.microseconds / 1000),
            })),
          }
        : null,
    };
  } finally {
    graph.dispose();
    o.dispose();
  }
}

if (webgpu && !info?.software) await warmUpGpu();

const speed: Record<string, unknown>[] = [];
for (const [m, n, k] of speedShapes) {
  const row: Record<string, unknown> = {
    shape: `${m}x${n}x${k}`,
    m,
    n,
    k,
    int8Route: route(m, n, k),
  };
  const a = tf.randomUniform([m, k], -1, 1, 'float32', 1) as tf.Tensor2D;
  const b = tf.randomUniform([n, k], -0.05, 0.05, 'float32', 2) as tf.Tensor2D;
  makeResident(a);
  makeResident(b);
  await sync(a);
  await sync(b);
  try {
    const splitMs = await time(() => splitMatMul(a, b));
    const f32Ms = await time(() => tf.matMul(a, b, false, true));
    row.split = { ms: round3(splitMs), tflops: tflops(m, n, k, splitMs) };
    row.f32 = { ms: round3(f32Ms), tflops: tflops(m, n, k, f32Ms) };
    row.speedup = +(f32Ms / splitMs).toFixed(2);
    const gs = await graphTime(() => splitMatMul(a, b));
    const gf = await graphTime(() => tf.matMul(a, b, false, true));
    if (gs || gf) {
      row.graph = {
        split: gs && { ...gs, tflops: tflops(m, n, k, gs.ms) },
        f32: gf && { ...gf, tflops: tflops(m, n, k, gf.ms) },
        speedup: gs && gf ? +(gf.ms / gs.ms).toFixed(2) : null,
      };
    }
    if (webgpu) {
      // training's path: tf.matMul under setMatMulPrecision('split') (the plugin's split product:
      // the fused kernel unless EDKM_SPLIT_KERNEL=three, or three products where it cannot)
      setMatMulPrecision('split');
      try {
        const run = () => tf.matMul(a, b, false, true);
        const ms = await time(run);
        const g = await graphTime(run);
        row.precision = {
          kernel: process.env.EDKM_SPLIT_KERNEL ?? 'fused',
          fused: int8SplitRoute(m, n, k) !== 'plain',
          ms: round3(ms),
          tflops: tflops(m, n, k, ms),
          speedup: +(f32Ms / ms).toFixed(2),
          graph: g && {
            ...g,
            tflops: tflops(m, n, k, g.ms),
            speedup: gf ? +(gf.ms / g.ms).toFixed(2) : null,
          },
        };
      } finally {
        setMatMulPrecision('f32');
      }
    }
    if (withSteps) {
      const qa = quantizeRowsInt8(a, 2);
      const qb = quantizeRowsInt8(b, 2);
      const alo = qa.lo as tf.Tensor2D;
      const blo = qb.lo as tf.Tensor2D;
      const c1 = int8MatMul(qa.hi, qb.hi);
      const c2 = int8MatMul(qa.hi, blo);
      const c3 = int8MatMul(alo, qb.hi);
      const quantA = await time(() => Object.values(quantizeRowsInt8(a, 2)) as tf.Tensor[]);
      const quantB = await time(() => Object.values(quantizeRowsInt8(b, 2)) as tf.Tensor[]);
      const product = await time(() => int8MatMul(qa.hi, qb.hi));
      const rescale = await time(() =>
        int8Rescale(c1, qa.scale, qb.scale, { c2, c3, lo: 1 / 256 }),
      );
      row.steps = {
        quantizeA: round3(quantA),
        quantizeB: round3(quantB),
        int8MatMulEach: { ms: round3(product), tops: tflops(m, n, k, product), count: 3 },
        rescale: round3(rescale),
        sum: round3(quantA + quantB + 3 * product + rescale),
      };
      tf.dispose([qa.hi, alo, qa.scale, qb.hi, blo, qb.scale, c1, c2, c3]);
    }
  } catch (err) {
    row.error = err instanceof Error ? err.message : String(err);
  }
  tf.dispose([a, b]);
  speed.push(row);
  process.stderr.write(`${JSON.stringify(row)}\n`);
}

/** Normal values from a seeded uniform source (Box–Muller). */
function normals(count: number, std: number, s: number): Float32Array {
  const rnd = seededRandom(s);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const r = std * Math.sqrt(-2 * Math.log(1 - rnd()));
    const t = 2 * Math.PI * rnd();
    out[i] = r * Math.cos(t);
    if (i + 1 < count) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

/** LLaMA-like operands: A [m,k] N(0,1) with `outliers` columns ×20, B [n,k] N(0, 0.02²). */
function operands(m: number, n: number, k: number) {
  const a = normals(m * k, 1, seed);
  const rnd = seededRandom(seed + 7);
  const cols: number[] = [];
  while (cols.length < Math.min(outliers, k)) {
    const c = Math.floor(rnd() * k);
    if (!cols.includes(c)) cols.push(c);
  }
  cols.sort((x, y) => x - y);
  for (let i = 0; i < m; i++) for (const c of cols) a[i * k + c] *= OUTLIER_FACTOR;
  return { a, b: normals(n * k, B_STD, seed + 1), outlierColumns: cols };
}

const toBf16 = (x: Float32Array) => fromHalfBits(toHalfBits(x, 'bf16'), 'bf16');

/** Relative RMS error ‖got − ref‖ / ‖ref‖ and max |got − ref|. */
function errors(got: ArrayLike<number>, ref: Float64Array) {
  let se = 0;
  let sr = 0;
  let max = 0;
  for (let i = 0; i < ref.length; i++) {
    const e = got[i] - ref[i];
    se += e * e;
    sr += ref[i] * ref[i];
    max = Math.max(max, Math.abs(e));
  }
  return { relRms: Number(Math.sqrt(se / sr).toPrecision(4)), maxAbs: Number(max.toPrecision(4)) };
}

/** The sampled rows' products on the active backend, [rows.length, n]. */
async function deviceRows(c: tf.Tensor2D, rows: number[]): Promise<Float32Array> {
  const idx = tf.tensor1d(rows, 'int32');
  const picked = tf.gather(c, idx);
  const v = (await picked.data()) as Float32Array;
  tf.dispose([idx, picked, c]);
  return v;
}

// each worker: columns [j0, j1) of the float64 products of the sampled rows, with B as given
// (ref) and with A and B rounded to bf16 (bf; float64 sums of exact bf16 products)
const WORKER = `
const { parentPort, workerData: w } = require('node:worker_threads');
const A = new Float64Array(w.a), AB = new Float64Array(w.ab);
const B = new Float32Array(w.b), BB = new Float32Array(w.bb);
const ref = new Float64Array(w.ref), bf = new Float64Array(w.bf);
const { count, n, k, j0, j1 } = w;
const br = new Float64Array(k), bbr = new Float64Array(k);
for (let j = j0; j < j1; j++) {
  for (let p = 0; p < k; p++) { br[p] = B[j * k + p]; bbr[p] = BB[j * k + p]; }
  for (let r = 0; r < count; r++) {
    const o = r * k;
    let s = 0, t = 0;
    for (let p = 0; p < k; p++) { s += A[o + p] * br[p]; t += AB[o + p] * bbr[p]; }
    ref[r * n + j] = s;
    bf[r * n + j] = t;
  }
}
parentPort.postMessage(0);
`;

/** A Float32Array/Float64Array's values in a SharedArrayBuffer. */
function shared<T extends Float32Array | Float64Array>(
  Kind: { new (b: SharedArrayBuffer): T; BYTES_PER_ELEMENT: number },
  values: ArrayLike<number> | number,
): T {
  const length = typeof values === 'number' ? values : values.length;
  const out = new Kind(new SharedArrayBuffer(length * Kind.BYTES_PER_ELEMENT));
  if (typeof values !== 'number') out.set(values);
  return out;
}

/**
 * The float64 reference (ref) and the bf16-autocast emulation before its output rounding (bf) of
 * the sampled rows × all n columns, split over worker threads by columns.
 */
async function hostProducts(
  av: Float32Array,
  bv: Float32Array,
  rows: number[],
  n: number,
  k: number,
) {
  const count = rows.length;
  const a = shared(Float64Array, count * k);
  const ab = shared(Float64Array, count * k);
  rows.forEach((i, r) => {
    const row = av.subarray(i * k, (i + 1) * k);
    a.set(row, r * k);
    ab.set(toBf16(row), r * k);
  });
  const b = shared(Float32Array, bv);
  const bb = shared(Float32Array, toBf16(bv));
  const ref = shared(Float64Array, count * n);
  const bf = shared(Float64Array, count * n);
  const threads = Math.max(1, Math.min(16, os.availableParallelism(), n));
  const per = Math.ceil(n / threads);
  await Promise.all(
    Array.from({ length: threads }, (_, t) => {
      const worker = new Worker(WORKER, {
        eval: true,
        workerData: {
          ...{ a: a.buffer, ab: ab.buffer, b: b.buffer, bb: bb.buffer },
          ...{ ref: ref.buffer, bf: bf.buffer, count, n, k },
          ...{ j0: t * per, j1: Math.min(n, (t + 1) * per) },
        },
      });
      return new Promise<void>((resolve, reject) => {
        worker.once('message', () => resolve());
        worker.once('error', reject);
      }).finally(() => worker.terminate());
    }),
  );
  return { ref, bf: Float32Array.from(bf) };
}

const accuracy: Record<string, unknown>[] = [];
for (const [index, [m, n, k]] of errorShapes.entries()) {
  const t0 = performance.now();
  const { a: av, b: bv, outlierColumns } = operands(m, n, k);
  const count = Math.min(errorRows, m);
  const rows = Array.from({ length: count }, (_, i) => Math.floor((i * m) / count));
  const a = tf.tensor2d(av, [m, k]);
  const b = tf.tensor2d(bv, [n, k]);
  const split = await deviceRows(splitMatMul(a, b), rows);
  const f32 = await deviceRows(tf.matMul(a, b, false, true), rows);
  tf.dispose([a, b]);
  // float64 reference and bf16 autocast emulated on the host, over the sampled rows
  const { ref, bf } = await hostProducts(av, bv, rows, n, k);
  let refSq = 0;
  for (const v of ref) refSq += v * v;
  const row: Record<string, unknown> = {
    shape: `${m}x${n}x${k}`,
    m,
    n,
    k,
    int8Route: route(m, n, k),
    rows: count,
    refRms: Number(Math.sqrt(refSq / ref.length).toPrecision(4)),
    split: errors(split, ref),
    f32: errors(f32, ref),
    bf16Emulated: errors(toBf16(bf), ref),
  };
  row.seconds = +((performance.now() - t0) / 1000).toFixed(1);
  if (index === 0 && dumpDir) {
    mkdirSync(dumpDir, { recursive: true });
    const bytes = (x: Float32Array) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    writeFileSync(path.join(dumpDir, 'a.f32'), bytes(av));
    writeFileSync(path.join(dumpDir, 'b.f32'), bytes(bv));
    const header = {
      m,
      n,
      k,
      form: 'NT: C[m,n] = A[m,k] · B[n,k]ᵀ',
      a: 'a.f32',
      b: 'b.f32',
      dtype: 'float32',
      byteOrder: 'little',
      layout: 'row-major',
      seed,
      aDistribution: `N(0,1), columns ${outlierColumns.join(',')} ×${OUTLIER_FACTOR}`,
      bDistribution: `N(0,${B_STD}²)`,
      rows,
      ours: {
        backend: selection.description,
        int8Route: row.int8Route,
        split: row.split,
        f32: row.f32,
        bf16Emulated: row.bf16Emulated,
      },
    };
    writeFileSync(path.join(dumpDir, 'header.json'), `${JSON.stringify(header, null, 1)}\n`);
    row.dumped = dumpDir;
  }
  accuracy.push(row);
  process.stderr.write(`${JSON.stringify(row)}\n`);
}

// issue #25's bar: error ≤ bf16 autocast's (here its host emulation; torch_split_ref.py has the
// real one) at ≥ 2× our f32 GEMM's speed (moonshot: ≥ 200 effective TFLOP/s)
const speedups = speed.map((r) => r.speedup as number | undefined).filter((v) => v !== undefined);
const splitTflops = speed
  .map((r) => (r.split as { tflops: number } | undefined)?.tflops)
  .filter((v) => v !== undefined);
printJson({
  bench: 'split',
  backend: selection.description,
  device: info,
  unsafeApis: process.env.EDKM_WEBGPU_UNSAFE === '1',
  int8RouteSetting: webgpu ? int8RouteFlag : null,
  dawnFlags: process.env.EDKM_DAWN_FLAGS ?? '',
  reps,
  speed,
  accuracy,
  verdict: {
    errorAtMostBf16Emulated: accuracy.every(
      (r) =>
        (r.split as { relRms: number }).relRms <= (r.bf16Emulated as { relRms: number }).relRms,
    ),
    minSpeedup: speedups.length ? Math.min(...speedups) : null,
    speedAtLeast2x: speedups.length ? speedups.every((s) => s >= 2) : null,
    maxSplitTflops: splitTflops.length ? Math.max(...splitTflops) : null,
    moonshot200: splitTflops.length ? splitTflops.some((t) => t >= 200) : null,
    // training's path (setMatMulPrecision('split')), replayed graphs against the f32 GEMM's
    precisionGraphSpeedups: speed.map(
      (r) => (r.precision as { graph?: { speedup: number | null } } | undefined)?.graph?.speedup,
    ),
  },
  seconds: +((performance.now() - started) / 1000).toFixed(1),
});
