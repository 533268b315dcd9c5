import { type PaletteMatMulAttrs, decodeIndices, type tf, tryLookupGemv } from '@edkm/core';
import { f32, i32, output, wasmOf } from '../heap';
import { batchMatMul } from './BatchMatMul';
import { DECODE_THEN_GEMM_ROWS, wasmLinearFusion, wordsOf } from './packed';

/**
 * y = x · Wᵀ with W read from its LUTs and packed indices (LinearKernelNames.PaletteMatMul). For a
 * few rows of x (decoding) each stored row is decoded once and dotted with every row of x; for more,
 * W is decoded once into a dense heap matrix and multiplied by XNNPACK. Decoding at 1–3 bits goes
 * by table lookup (core's lookupGemv).
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
