import {
  type PaletteMatMulAttrs,
  decodeIndices,
  lookupPlan,
  lookupTables,
  type tf,
  tryLookupGemv,
} from '@edkm/core';
import { f32, heapOffset, i32, output, wasmOf } from '../heap';
import { simdKernels } from '../simd';
import { batchMatMul } from './BatchMatMul';
import { DECODE_THEN_GEMM_ROWS, wasmLinearFusion, wordsOf } from './packed';

/**
 * y = x · Wᵀ with W read from its LUTs and packed indices (LinearKernelNames.PaletteMatMul). For a
 * few rows of x (decoding) each stored row is decoded once and dotted with every row of x; for more,
 * W is decoded once into a dense heap matrix and multiplied by XNNPACK. Decoding at 1–3 bits goes
 * by table lookup (core's lookupGemv): in the plugin's wasm kernel for one row of x, one LUT and
 * 6-bit codes on word-aligned rows (the usual decode step), else in JS.
 */
export const paletteMatMul: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { codes, lut, rows, scales } = inputs as Record<string, tf.TensorInfo>;
  const fused = attrs as unknown as PaletteMatMulAttrs;
  const { bits, clusterDim: d } = fused;
  const lf = wasmLinearFusion(wasm, inputs as Record<string, tf.TensorInfo>, fused);
  const { x } = lf;
  const [m, k] = x.shape;
  const n = rows.shape[0];
  if (m === 1) {
    const y = wasmLookup(wasm, lf.x, codes, lut, rows, scales, n, k, bits, d);
    if (y) return lf.finish(y);
  }
  const v = k / d;
  const entries = (1 << bits) * d;
  const idx = new Uint8Array(v);
  const gemm = m >= DECODE_THEN_GEMM_ROWS;
  const dense = output(wasm, gemm ? [n, k] : [m, n], 'float32');
  const out = f32(wasm, dense);
  const xv = f32(wasm, x);
  const words = wordsOf(i32(wasm, codes));
  const table = f32(wasm, lut);
  const meta = i32(wasm, rows);
  const scale = f32(wasm, scales);
  const weight = {
    shape: [n, k] as [number, number],
    bits,
    clusterDim: d,
    codes: words,
    lut: table,
    rows: meta,
    scales: scale,
  };
  if (!gemm && tryLookupGemv(xv, m, weight, out)) return lf.finish(dense);
  for (let s = 0; s < n; s++) {
    decodeIndices(words, bits, s * v, v, idx);
    const row = meta[2 * s];
    const base = meta[2 * s + 1] * entries;
    const c = scale[s];
    if (gemm) {
      // row `row` of the dense W: scale · LUT entries
      const o = row * k;
      for (let j = 0; j < v; j++)
        for (let e = 0; e < d; e++) out[o + j * d + e] = c * table[base + idx[j] * d + e];
      continue;
    }
    for (let r = 0; r < m; r++) {
      const xo = r * k;
      let acc = 0;
      for (let j = 0; j < v; j++) {
        const at = base + idx[j] * d;
        for (let e = 0; e < d; e++) acc += xv[xo + j * d + e] * table[at + e];
      }
      out[r * n + row] = c * acc;
    }
  }
  if (!gemm) return lf.finish(dense);
  const y = batchMatMul({
    inputs: { a: x, b: dense },
    backend,
    attrs: { transposeA: false, transposeB: true },
  }) as tf.TensorInfo;
  wasm.disposeData(dense.dataId);
  return lf.finish(y);
};

/**
 * y = x · Wᵀ for one row of x by the wasm lookup kernels (tables per LUT group, sums over each run
 * of stored rows that share a group; scales and the row permutation applied here), or undefined
 * where they do not apply (not 6-bit codes, rows off word boundaries, no wasm kernels).
 */
function wasmLookup(
  wasm: ReturnType<typeof wasmOf>,
  x: tf.TensorInfo,
  codes: tf.TensorInfo,
  lut: tf.TensorInfo,
  rows: tf.TensorInfo,
  scales: tf.TensorInfo,
  n: number,
  k: number,
  bits: number,
  d: number,
): tf.TensorInfo | undefined {
  const entries = (1 << bits) * d;
  const groups = lut.shape[0] / entries;
  const plan = lookupPlan({ shape: [n, k], bits, clusterDim: d }, 1, groups);
  const simd = simdKernels(wasm);
  const runs = plan ? k / plan.g : 0;
  if (!plan || !simd || plan.g * bits !== 6 || (k * bits) % 32 !== 0 || runs % 16) return undefined;
  // allocations first (any of them may grow the heap), views and offsets after
  const y = output(wasm, [1, n], 'float32');
  const tables = output(wasm, [groups * runs * plan.p], 'float32');
  const sums = output(wasm, [n], 'float32');
  const [xAt, lutAt, tablesAt, codesAt, sumsAt] = [x, lut, tables, codes, sums].map((t) =>
    heapOffset(wasm, t),
  );
  const tableBytes = runs * plan.p * 4;
  const rowBytes = (k * bits) / 8;
  const meta = i32(wasm, rows);
  const built = new Uint8Array(groups);
  for (let s = 0; s < n; ) {
    const group = meta[2 * s + 1];
    let e = s + 1;
    while (e < n && meta[2 * e + 1] === group) e++;
    if (!built[group]) {
      if (bits === 3)
        simd.tablesPairs3(xAt, lutAt + group * entries * 4, tablesAt + group * tableBytes, runs);
      else
        lookupTables(
          f32(wasm, x),
          0,
          k,
          f32(wasm, lut),
          group * entries,
          bits,
          plan,
          f32(wasm, tables).subarray((group * tableBytes) / 4),
        );
      built[group] = 1;
    }
    simd.lookup6Sums(
      codesAt + s * rowBytes,
      tablesAt + group * tableBytes,
      sumsAt + s * 4,
      e - s,
      runs,
    );
    s = e;
  }
  const out = f32(wasm, y);
  const sum = f32(wasm, sums);
  const scale = f32(wasm, scales);
  for (let s = 0; s < n; s++) out[meta[2 * s]] = scale[s] * sum[s];
  wasm.disposeData(tables.dataId);
  wasm.disposeData(sums.dataId);
  return y;
}
