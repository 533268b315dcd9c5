import type { PaletteWeightHost } from './linear';

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

/** Table entries at most per weight of W: above it, building the tables costs more than they save. */
const MAX_TABLE_SHARE = 0.5;

/**
 * The plan for a product of m rows of x with W, or undefined when lookups would not pay (4 bits
 * and up, vectors d > 1, K with no divisor in 2..6/bits, or tables as large as W itself).
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
    // tables: groups · K/g · P entries (each g multiply-adds); the lookups: N · K/g
    if (groups * p * g > MAX_TABLE_SHARE * n) return undefined;
    return { g, p };
  }
  return undefined;
}

/**
 * The tables of one x row (`x` from `xo`, K values) for one LUT (`lut` from `lo`, 2^bits values):
 * out[run · P + code] = Σᵢ lut[code's i-th index] · x[g·run + i], codes' first index in the low bits.
 */
function buildTables(
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
  const mask = (1 << bits) - 1;
  for (let run = 0, at = 0; run < k / g; run++, at += p) {
    const x0 = xo + run * g;
    for (let code = 0; code < p; code++) {
      let s = 0;
      for (let i = 0, c = code; i < g; i++, c >>>= bits) s += lut[lo + (c & mask)] * x[x0 + i];
      out[at + code] = s;
    }
  }
}

/**
 * y[r, rowOut[s]] = scales[s] · Σ W[s, :] · x[r, :] for r < m, by the plan's lookups (see
 * lookupPlan; `groups` is the number of LUT groups of w). Rows of W are read once; each x row has
 * its own tables.
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
  const gmask = (1 << gb) - 1;
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
        buildTables(x, r * k, k, lut, group << bits, bits, plan, t.subarray(r * perTable));
      tables.set(group, t);
    }
    // the row's codes, gb bits each, from bit s·K·bits of the stream
    const bit = s * k * bits;
    let word = bit >>> 5;
    const sh = bit & 31;
    let acc = codes[word++] >>> sh;
    let avail = 32 - sh;
    for (let run = 0; run < runs; run++) {
      if (avail >= gb) {
        codesOfRow[run] = acc & gmask;
        acc >>>= gb;
        avail -= gb;
      } else {
        const next = codes[word++];
        codesOfRow[run] = (acc | (next << avail)) & gmask;
        acc = next >>> (gb - avail);
        avail += 32 - gb;
      }
    }
    const out = rowOut[s];
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
