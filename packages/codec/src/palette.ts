import { FormatError, ShapeError, fromHalfBits } from '@edkm/core';

/**
 * One palettized weight [rows, cols]: every vector of `clusterDim` consecutive weights of a row is
 * an index into a look-up table (LUT) of K = 2^bits fp16 centroids. Rows are stored in groups
 * that each have their own LUT; a row permutation (JLCM's neuron re-ordering) and per-row scales
 * are optional.
 *
 * Stored row s holds original row `permutation[s]` (identity without one); group g covers the
 * next `groupRows[g]` stored rows (or `groupSize` rows each when `groupRows` is absent); the
 * weight is `scales[s] · lut[g][index]`.
 */
export interface PaletteTensor {
  shape: [number, number];
  bits: number;
  clusterDim: number;
  /** Rows per LUT when all groups are equal (rows for one LUT per tensor). */
  groupSize: number;
  /** Rows per LUT in stored order, when groups differ in size (overrides groupSize). */
  groupRows?: number[];
  /** fp16 bits of the LUTs, [groups, K, clusterDim]. */
  lut: Uint16Array;
  /** The index of every vector, stored row-major (vectors of clusterDim along a row). */
  indices: Uint8Array;
  /** Per stored row scale (per-channel scaling), else 1. */
  scales?: Float32Array;
  /** Original row of each stored row, a permutation of 0..rows-1. */
  permutation?: Int32Array;
}

/** Rows per LUT of each group, in stored order. */
export function groupRowsOf(p: PaletteTensor): number[] {
  if (p.groupRows) return p.groupRows;
  const rows = p.shape[0];
  if (!Number.isInteger(p.groupSize) || p.groupSize < 1 || rows % p.groupSize !== 0)
    throw new ShapeError(`groupSize ${p.groupSize} does not divide ${rows} rows`);
  return new Array(rows / p.groupSize).fill(p.groupSize);
}

/** Checks every size and range of a palettized tensor; a FormatError names what is wrong. */
export function validatePalette(p: PaletteTensor, name = 'tensor'): void {
  const [rows, cols] = p.shape;
  const fail = (msg: string): never => {
    throw new FormatError(`${name}: ${msg}`);
  };
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1)
    fail(`shape [${p.shape}] is not a matrix`);
  if (!Number.isInteger(p.bits) || p.bits < 1 || p.bits > 8) fail(`bits ${p.bits} not in 1..8`);
  const d = p.clusterDim;
  if (!Number.isInteger(d) || d < 1 || cols % d !== 0)
    fail(`clusterDim ${d} does not divide the ${cols} columns`);
  const groups = groupRowsOf(p);
  if (
    groups.some((g) => !Number.isInteger(g) || g < 1) ||
    groups.reduce((a, b) => a + b, 0) !== rows
  )
    fail(
      `group rows [${groups.slice(0, 8)}${groups.length > 8 ? ', …' : ''}] do not sum to ${rows}`,
    );
  const k = 2 ** p.bits;
  if (p.lut.length !== groups.length * k * d)
    fail(`LUT has ${p.lut.length} entries, expected ${groups.length}×${k}×${d}`);
  if (p.indices.length !== (rows * cols) / d)
    fail(`${p.indices.length} indices, expected ${(rows * cols) / d}`);
  if (p.scales && p.scales.length !== rows) fail(`${p.scales.length} scales for ${rows} rows`);
  if (p.permutation) {
    if (p.permutation.length !== rows)
      fail(`permutation of ${p.permutation.length} for ${rows} rows`);
    const seen = new Uint8Array(rows);
    for (const r of p.permutation) {
      if (!(r >= 0 && r < rows) || seen[r])
        fail(`permutation is not a permutation of 0..${rows - 1}`);
      seen[r] = 1;
    }
  }
}

/**
 * Dense float32 weights [rows, cols] (original row order) of a palettized tensor:
 * W[permutation[s]] = scales[s] · lut[group of s][indices of s].
 */
export function dequantize(p: PaletteTensor): Float32Array {
  validatePalette(p);
  const [rows, cols] = p.shape;
  const d = p.clusterDim;
  const k = 2 ** p.bits;
  const lut = fromHalfBits(p.lut, 'fp16');
  const out = new Float32Array(rows * cols);
  const vectors = cols / d;
  const { indices, scales, permutation } = p;
  // one row's LUT with its scale applied (the same f32 products as scale · entry per weight)
  const rowLut = new Float32Array(k * d);
  let stored = 0;
  groupRowsOf(p).forEach((count, g) => {
    const base = g * k * d;
    for (let end = stored + count; stored < end; stored++) {
      const row = permutation ? permutation[stored] : stored;
      const scale = scales ? scales[stored] : 1;
      for (let j = 0; j < k * d; j++) rowLut[j] = scale * lut[base + j];
      const from = stored * vectors;
      const to = row * cols;
      let bad = 0;
      if (d === 1)
        for (let v = 0; v < vectors; v++) {
          const idx = indices[from + v];
          bad |= idx >= k ? 1 : 0;
          out[to + v] = rowLut[idx];
        }
      else
        for (let v = 0; v < vectors; v++) {
          const idx = indices[from + v];
          bad |= idx >= k ? 1 : 0;
          for (let b = 0; b < d; b++) out[to + v * d + b] = rowLut[idx * d + b];
        }
      if (bad) {
        let v = 0;
        while (indices[from + v] < k) v++;
        throw new ShapeError(
          `index ${indices[from + v]} at row ${row} is out of range for ${p.bits} bits`,
        );
      }
    }
  });
  return out;
}

/** Bytes of each stored part of a palettized tensor (indices packed at `bits` per index). */
export function paletteBytes(p: PaletteTensor): {
  lut: number;
  indices: number;
  scales: number;
  permutation: number;
  total: number;
} {
  const lut = p.lut.length * 2;
  const indices = Math.ceil((p.indices.length * p.bits) / 8);
  const scales = p.scales ? p.scales.length * 2 : 0;
  // a permutation of R rows needs ceil(log2 R) bits per row
  const rows = p.shape[0];
  const permutation = p.permutation
    ? Math.ceil((rows * Math.max(1, Math.ceil(Math.log2(rows)))) / 8)
    : 0;
  return { lut, indices, scales, permutation, total: lut + indices + scales + permutation };
}
