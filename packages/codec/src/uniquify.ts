import {
  type HalfDtype,
  InvalidArgumentError,
  NonFiniteError,
  ShapeError,
  fromHalfBits,
} from '@edkm/core';
import { checkDtype, checkKind, typedKind } from './check';

const CODES = 65536;

/**
 * How `Uniquified.indices` addresses the distinct values: `'code'` keeps each element's raw 16-bit
 * code (index into a 65,536-row table, or through `codeToRow`); `'compact'` stores its row in
 * `[0, U)` of `uniqueCodes` / `values` / `counts`.
 */
export type IndexForm = 'code' | 'compact';

/** A 16-bit weight tensor as a table of its distinct values plus an index per element. */
export interface Uniquified {
  dtype: HalfDtype;
  /** Number of elements. */
  n: number;
  /** The U distinct codes, ascending by code (not by value: negative values have the high codes). */
  uniqueCodes: Uint16Array;
  /** Exact float value of each distinct code. */
  values: Float32Array;
  /** Occurrences of each distinct code. */
  counts: Uint32Array;
  indexForm: IndexForm;
  /** Per element: its raw code (`'code'`) or its row in `[0, U)` (`'compact'`). */
  indices: Uint16Array | Uint32Array;
  /** 65,536 entries: the row of every code in `uniqueCodes`, -1 where absent. */
  codeToRow: Int32Array;
  /** Bytes of all the arrays above. */
  byteSize: number;
}

export interface UniquifyOptions {
  dtype: HalfDtype;
  /** Default `'compact'`. */
  index?: IndexForm;
  /**
   * Buffer (Uint16Array of length N) to write the index list into and return as `indices`, e.g.
   * the previous step's `indices`: reusing it skips allocating and first-touching 2N bytes, which
   * dominates at LLaMA sizes. It may be a Uint16Array `values` itself (codes remapped in place).
   */
  out?: Uint16Array;
}

/**
 * Rounds float32 values to `dtype` (nearest, ties to even) — or takes raw 16-bit codes of `dtype`
 * from a Uint16Array — and splits them into the sorted distinct codes and an index per element.
 * O(N + 65,536): a histogram over all possible codes, never a sort of the N values.
 *
 * −0 and +0 are different codes and stay different rows, so that gathering the values back is
 * bit-exact; ±Inf (including float32 values that overflow the dtype) are ordinary codes; NaN
 * throws NonFiniteError. With a Uint16Array input, `index: 'code'` and no `out`, `indices` is the
 * input array itself (no copy).
 */
export function uniquify(values: Float32Array | Uint16Array, opts: UniquifyOptions): Uniquified {
  const op = 'uniquify';
  if (opts == null || typeof opts !== 'object') {
    throw new InvalidArgumentError(`${op}: options { dtype: 'bf16' | 'fp16' } are required`);
  }
  const dtype = checkDtype(op, opts.dtype);
  const form = opts.index ?? 'compact';
  if (form !== 'code' && form !== 'compact') {
    throw new InvalidArgumentError(`${op}: index must be 'code' or 'compact', got ${String(form)}`);
  }
  checkKind(op, 'values', values, ['Float32Array', 'Uint16Array']);
  const n = values.length;
  if (n === 0) throw new ShapeError(`${op}: values is empty (0 elements): nothing to uniquify`);

  const out = opts.out;
  if (out !== undefined) {
    checkKind(op, 'out', out, ['Uint16Array']);
    if (out.length !== n)
      throw new ShapeError(`${op}: out has length ${out.length}, expected ${n}`);
  }

  const hist = new Uint32Array(CODES);
  let codes: Uint16Array;
  let ownCodes: boolean;
  if (typedKind(values) === 'Uint16Array') {
    codes = values as Uint16Array;
    ownCodes = false;
    histogram(codes, hist);
    checkNaNCodes(codes, hist, dtype);
  } else {
    codes = out ?? new Uint16Array(n);
    ownCodes = true;
    // an Int32 view reads the float32 bit patterns without conversion; int32 (not uint32) keeps
    // V8 on 32-bit integer arithmetic for negative floats too
    const bits = new Int32Array(values.buffer, values.byteOffset, n);
    const nan = dtype === 'bf16' ? encodeBf16(bits, codes, hist) : encodeF16(bits, codes, hist);
    if (nan) {
      let i = 0;
      while ((bits[i] & 0x7fffffff) <= 0x7f800000) i++;
      throw new NonFiniteError(
        `${op}: values[${i}] is NaN; NaN has no place in a ${dtype} value table (clean or mask the weights first)`,
      );
    }
  }

  let u = 0;
  for (let c = 0; c < CODES; c++) if (hist[c] !== 0) u++;
  const uniqueCodes = new Uint16Array(u);
  const counts = new Uint32Array(u);
  const codeToRow = new Int32Array(CODES).fill(-1);
  for (let c = 0, r = 0; c < CODES; c++) {
    if (hist[c] === 0) continue;
    uniqueCodes[r] = c;
    counts[r] = hist[c];
    codeToRow[c] = r++;
  }

  let indices: Uint16Array = codes;
  if (form === 'compact') {
    // rows < U <= 65,536 fit in 16 bits; a float input's code buffer is remapped in place
    indices = ownCodes ? codes : (out ?? new Uint16Array(n));
    remap(codes, codeToRow, indices);
  } else if (!ownCodes && out !== undefined && out !== codes) {
    out.set(codes);
    indices = out;
  }
  const table = fromHalfBits(uniqueCodes, dtype);
  return {
    dtype,
    n,
    uniqueCodes,
    values: table,
    counts,
    indexForm: form,
    indices,
    codeToRow,
    byteSize:
      uniqueCodes.byteLength +
      table.byteLength +
      counts.byteLength +
      indices.byteLength +
      codeToRow.byteLength,
  };
}

// The hot loops live in small functions of their own so that each is compiled for one array type.
function histogram(codes: Uint16Array, hist: Uint32Array): void {
  const n = codes.length;
  for (let i = 0; i < n; i++) hist[codes[i]]++;
}

function remap(codes: Uint16Array, codeToRow: Int32Array, out: Uint16Array): void {
  const n = codes.length;
  for (let i = 0; i < n; i++) out[i] = codeToRow[codes[i]];
}

/** Non-zero when any element is NaN. Branch-free flag: 0x7f800000 - |x| is negative only for NaN. */
function encodeBf16(bits: Int32Array, codes: Uint16Array, hist: Uint32Array): number {
  let nan = 0;
  const n = bits.length;
  for (let i = 0; i < n; i++) {
    const b = bits[i];
    nan |= (0x7f800000 - (b & 0x7fffffff)) >>> 31;
    const c = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
    codes[i] = c;
    hist[c]++;
  }
  return nan;
}

function encodeF16(bits: Int32Array, codes: Uint16Array, hist: Uint32Array): number {
  let nan = 0;
  const n = bits.length;
  for (let i = 0; i < n; i++) {
    const x = bits[i];
    const a = x & 0x7fffffff;
    nan |= (0x7f800000 - a) >>> 31;
    let h: number;
    if (a >= 0x38800000) {
      // normal range: rebias the exponent, round off 13 mantissa bits; >= 65520 (and Inf) -> Inf
      const r = a - 0x38000000;
      h = (r + 0x0fff + ((r >>> 13) & 1)) >>> 13;
      if (h > 0x7c00) h = 0x7c00;
    } else h = a < 0x33000000 ? 0 : f16Subnormal(a);
    const c = ((x >>> 16) & 0x8000) | h;
    codes[i] = c;
    hist[c]++;
  }
  return nan;
}

/** |x| in [2^-25, 2^-14) -> half subnormal mantissa (ties to even; may round up to 2^-14). */
function f16Subnormal(a: number): number {
  const mant = (a & 0x7fffff) | 0x800000;
  const shift = 126 - (a >>> 23);
  const half = mant >>> shift;
  const rem = mant & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  return rem > halfway || (rem === halfway && (half & 1) === 1) ? half + 1 : half;
}

function checkNaNCodes(codes: Uint16Array, hist: Uint32Array, dtype: HalfDtype): void {
  const firstNaN = dtype === 'bf16' ? 0x7f81 : 0x7c01;
  let any = 0;
  for (let c = firstNaN; c < 0x8000; c++) any |= hist[c] | hist[c | 0x8000];
  if (!any) return;
  const nanCode = (c: number) => (c & 0x7fff) >= firstNaN;
  let i = 0;
  while (!nanCode(codes[i])) i++;
  throw new NonFiniteError(
    `uniquify: code 0x${codes[i].toString(16)} at values[${i}] is a ${dtype} NaN; NaN has no place in a value table`,
  );
}
