import { type PaletteWeightHost, decodeIndices } from './linear';

/**
 * y = x · Wᵀ for a few rows of x and a palettized W of 1–3 bits (d = 1) by table lookup, the way
 * T-MAC and LUT-GEMM run low-bit products on CPUs: W's indices are read `g` at a time (g·bits ≤ 6
 * bits, one code of P = 2^(g·bits) values), and for each x row and LUT group a table holds, for
 * every run of g columns and every code, the partial sum Σ LUT[cᵢ]·x[g·p + i]. A stored row then
 * costs one lookup and one add per g weights instead of g decodes, LUT reads and multiplies; the
 * tables cost K/g · P entries per (x row, LUT group), shared by all rows of W.
 */
export interface LookupPlan {
  /** Weights per code (1–6). */
  g: number;
  /** Codes per run: 2^(g·bits). */
  p: number;
}

/**
 * The plan for a product of m rows of x with W, or undefined when lookups would not pay (4 bits
 * and up, vectors d > 1, K with no divisor in 2..6/bits, more than 8 rows of x, or tables that
 * outnumber W's rows: each LUT group's tables take about P additions per run, built level by
 * level, against one lookup per run for each of the N rows).
 */
export function lookupPlan(
  w: Pick<PaletteWeightHost, 'shape' | 'bits' | 'clusterDim'>,
  m: number,
  groups: number,
): LookupPlan | undefined {
  const [n, k] = w.shape;
  if (w.clusterDim !== 1 || w.bits > 3 || m > 8) return undefined;
  for (let g = Math.floor(6 / w.bits); g >= 2; g--) {
    if (k % g !== 0) continue;
    const p = 2 ** (g * w.bits);
    if (groups * p > n) return undefined;
    return { g, p };
  }
  return undefined;
}

/**
 * The tables of one x row (`x` from `xo`, K values) for one LUT (`lut` from `lo`, 2^bits values):
 * out[run · P + code] = Σᵢ lut[code's i-th index] · x[g·run + i], codes' first index in the low bits.
 */
export function lookupTables(
  x: Float32Array,
  xo: number,
  k: number,
  lut: Float32Array,
  lo: number,
  bits: number,
  plan: LookupPlan,
  out: Float32Array,
): void {
  const { g, p } = plan;
  const q = 1 << bits;
  for (let run = 0, at = 0; run < k / g; run++, at += p) {
    const x0 = xo + run * g;
    // level by level: codes of i+1 indices from those of i (code | c << i·bits) = sum + LUT[c]·x;
    // c descending so that c = 0, which writes over the level below, comes last
    for (let c = 0; c < q; c++) out[at + c] = lut[lo + c] * x[x0];
    for (let i = 1, width = q; i < g; i++, width *= q) {
      const xi = x[x0 + i];
      for (let c = q - 1; c >= 0; c--) {
        const v = lut[lo + c] * xi;
        const to = at + c * width;
        for (let low = 0; low < width; low++) out[to + low] = out[at + low] + v;
      }
    }
  }
}

/**
 * y[r, rowOut[s]] = scales[s] · Σ W[s, :] · x[r, :] for r < m, by the plan's lookups (see
 * lookupPlan). Rows of W are read once; each x row has its own tables per LUT group.
 */
export function lookupGemv(
  x: Float32Array,
  m: number,
  w: PaletteWeightHost,
  plan: LookupPlan,
  y: Float32Array,
): void {
  const [n, k] = w.shape;
  const { bits, codes, lut, rowOut, rowGroup, scales } = w;
  const { g, p } = plan;
  const runs = k / g;
  const gb = g * bits;
  const perTable = runs * p;
  // tables per (LUT group, x row), built when a group's first row comes
  const tables = new Map<number, Float32Array>();
  const codesOfRow = new Uint8Array(runs);
  for (let s = 0; s < n; s++) {
    const group = rowGroup[s];
    let t = tables.get(group);
    if (!t) {
      t = new Float32Array(m * perTable);
      for (let r = 0; r < m; r++)
        lookupTables(x, r * k, k, lut, group << bits, bits, plan, t.subarray(r * perTable));
      tables.set(group, t);
    }
    const bit = s * k * bits;
    const out = rowOut[s];
    if (m === 1 && gb === 6 && (bit & 31) === 0 && runs % 16 === 0) {
      y[out] = scales[s] * sum6(codes, bit >>> 5, t, runs);
      continue;
    }
    // the row's codes: a stream of gb-bit fields, runs of them to a row
    decodeIndices(codes, gb, s * runs, runs, codesOfRow);
    const c = scales[s];
    for (let r = 0; r < m; r++) {
      const base = r * perTable;
      let a0 = 0;
      let a1 = 0;
      let run = 0;
      for (let at = base; run + 1 < runs; run += 2, at += 2 * p) {
        a0 += t[at + codesOfRow[run]];
        a1 += t[at + p + codesOfRow[run + 1]];
      }
      if (run < runs) a0 += t[base + run * p + codesOfRow[run]];
      y[r * n + out] = c * (a0 + a1);
    }
  }
}

/**
 * One row's sum for 6-bit codes (3 bits in pairs, 2 bits in triples, 1 bit in sixes) from a
 * word-aligned start: 16 codes from every 3 words at shifts fixed here, no branch per code.
 */
function sum6(codes: Uint32Array, w: number, t: Float32Array, runs: number): number {
  let a = 0;
  let b = 0;
  for (let at = 0, end = runs * 64; at < end; at += 1024, w += 3) {
    const w0 = codes[w];
    const w1 = codes[w + 1];
    const w2 = codes[w + 2];
    a += t[at + (w0 & 63)] + t[at + 64 + ((w0 >>> 6) & 63)];
    b += t[at + 128 + ((w0 >>> 12) & 63)] + t[at + 192 + ((w0 >>> 18) & 63)];
    a += t[at + 256 + ((w0 >>> 24) & 63)] + t[at + 320 + (((w0 >>> 30) | (w1 << 2)) & 63)];
    b += t[at + 384 + ((w1 >>> 4) & 63)] + t[at + 448 + ((w1 >>> 10) & 63)];
    a += t[at + 512 + ((w1 >>> 16) & 63)] + t[at + 576 + ((w1 >>> 22) & 63)];
    b += t[at + 640 + (((w1 >>> 28) | (w2 << 4)) & 63)] + t[at + 704 + ((w2 >>> 2) & 63)];
    a += t[at + 768 + ((w2 >>> 8) & 63)] + t[at + 832 + ((w2 >>> 14) & 63)];
    b += t[at + 896 + ((w2 >>> 20) & 63)] + t[at + 960 + (w2 >>> 26)];
  }
  return a + b;
}

/** A palettized weight as the PaletteMatMul kernels bind it: `rows` holds (output row, LUT group) pairs. */
export interface PaletteKernelWeight {
  shape: [number, number];
  bits: number;
  clusterDim: number;
  codes: Uint32Array;
  lut: Float32Array;
  rows: Int32Array;
  scales: Float32Array;
}

/**
 * The host kernels' entry: lookupGemv into y when lookupPlan takes the product (true), else
 * nothing is written (false: the caller's general path).
 */
export function tryLookupGemv(
  x: Float32Array,
  m: number,
  w: PaletteKernelWeight,
  y: Float32Array,
): boolean {
  const n = w.shape[0];
  const plan = lookupPlan(w, m, w.lut.length / ((1 << w.bits) * w.clusterDim));
  if (!plan) return false;
  const rowOut = new Int32Array(n);
  const rowGroup = new Int32Array(n);
  for (let s = 0; s < n; s++) {
    rowOut[s] = w.rows[2 * s];
    rowGroup[s] = w.rows[2 * s + 1];
  }
  lookupGemv(x, m, { ...w, rowOut, rowGroup }, plan, y);
  return true;
}
