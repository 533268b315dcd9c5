import {
  type PaletteMatMulAttrs,
  decodeIndices,
  hostLinearFusion,
  type tf,
  tryLookupGemv,
} from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

let scratch = new Uint8Array(0);

/**
 * y = x · Wᵀ with W read from its LUTs and packed indices (see LinearKernelNames.PaletteMatMul):
 * each stored row's indices are decoded once into a reused scratch row and serve all M rows of x.
 * Decoding (a few rows of x, 1–3 bits) goes by table lookup instead (core's lookupGemv).
 */
export const paletteMatMul: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { x, codes, lut, rows, scales, g, residual } = inputs as Record<string, tf.TensorInfo>;
  const fused = attrs as unknown as PaletteMatMulAttrs;
  const { bits, clusterDim: d } = fused;
  const get = (t: tf.TensorInfo) => cpu.data.get(t.dataId).values as tf.backend_util.TypedArray;
  const f32 = (t?: tf.TensorInfo) => (t ? (get(t) as Float32Array) : undefined);
  const m = x.shape[0];
  const fusion = hostLinearFusion(get(x) as Float32Array, x.shape[1], fused, f32(g));
  const k = fusion.width;
  const xv = fusion.x;
  const n = rows.shape[0];
  const i32 = get(codes) as Int32Array;
  const words = new Uint32Array(i32.buffer, i32.byteOffset, i32.length);
  const table = get(lut) as Float32Array;
  const meta = get(rows) as Int32Array;
  const scale = get(scales) as Float32Array;
  const v = k / d;
  const entries = (1 << bits) * d;
  if (scratch.length < v) scratch = new Uint8Array(v);
  const idx = scratch;
  const y = new Float32Array(m * n);
  const weight = {
    shape: [n, k] as [number, number],
    bits,
    clusterDim: d,
    codes: words,
    lut: table,
    rows: meta,
    scales: scale,
  };
  if (tryLookupGemv(xv, m, weight, y))
    return cpu.makeTensorInfo([m, n], 'float32', fusion.finish(y, f32(residual)));
  for (let s = 0; s < n; s++) {
    decodeIndices(words, bits, s * v, v, idx);
    const out = meta[2 * s];
    const base = meta[2 * s + 1] * entries;
    const c = scale[s];
    for (let r = 0; r < m; r++) {
      const xo = r * k;
      let acc = 0;
      if (d === 1) {
        let a1 = 0;
        let a2 = 0;
        let a3 = 0;
        let j = 0;
        for (; j + 3 < v; j += 4) {
          acc += xv[xo + j] * table[base + idx[j]];
          a1 += xv[xo + j + 1] * table[base + idx[j + 1]];
          a2 += xv[xo + j + 2] * table[base + idx[j + 2]];
          a3 += xv[xo + j + 3] * table[base + idx[j + 3]];
        }
        for (; j < v; j++) acc += xv[xo + j] * table[base + idx[j]];
        acc += a1 + a2 + a3;
      } else {
        for (let j = 0; j < v; j++) {
          const at = base + idx[j] * d;
          const xj = xo + j * d;
          for (let e = 0; e < d; e++) acc += xv[xj + e] * table[at + e];
        }
      }
      y[r * n + out] = c * acc;
    }
  }
  return cpu.makeTensorInfo([m, n], 'float32', fusion.finish(y, f32(residual)));
};
