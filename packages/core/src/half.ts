/**
 * bfloat16 and IEEE float16 <-> float32 bit conversions. Rounding is to nearest, ties to even;
 * NaN stays NaN (quiet, sign kept), ±Inf stays ±Inf, float16 overflow rounds to ±Inf and small
 * values become float16 subnormals or ±0.
 */
export type HalfDtype = 'bf16' | 'fp16';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 value -> bfloat16 bits (round to nearest even). */
export function f32ToBf16Bits(value: number): number {
  f32[0] = value;
  const bits = u32[0];
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x0040) & 0xffff; // NaN -> quiet NaN
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** bfloat16 bits -> float32 value (exact). */
export function bf16BitsToF32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}

/** float32 value -> IEEE half bits (round to nearest even). */
export function f32ToF16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const absBits = x & 0x7fffffff;
  if (absBits >= 0x7f800000) {
    // Inf or NaN
    return sign | 0x7c00 | (absBits > 0x7f800000 ? 0x0200 | ((absBits >>> 13) & 0x3ff) : 0);
  }
  if (absBits >= 0x477ff000) return sign | 0x7c00; // rounds to >= 65520: overflow to Inf
  if (absBits < 0x38800000) {
    // subnormal half (or zero): value = mant * 2^-24
    if (absBits < 0x33000000) return sign; // < 2^-25 rounds to 0 (2^-25 exactly ties to even 0)
    const exp = absBits >>> 23;
    const mant = (absBits & 0x7fffff) | 0x800000;
    const shift = 126 - exp; // 14 .. 24
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    const rounded = rem > halfway || (rem === halfway && (half & 1) === 1) ? half + 1 : half;
    return sign | rounded;
  }
  // normal: rebias exponent 127 -> 15 and round the 13 dropped mantissa bits
  const rebased = absBits - 0x38000000;
  const rounded = (rebased + 0x0fff + ((rebased >>> 13) & 1)) >>> 13;
  return sign | rounded;
}

/** IEEE half bits -> float32 value (exact). */
export function f16BitsToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) {
    if (mant === 0) return sign * Number.POSITIVE_INFINITY;
    // keep the NaN payload and sign bit
    u32[0] = ((bits & 0x8000) << 16) | 0x7f800000 | (mant << 13);
    return f32[0];
  }
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Float32Array -> 16-bit codes of the given dtype. */
export function toHalfBits(
  values: ArrayLike<number>,
  dtype: HalfDtype,
  out?: Uint16Array,
): Uint16Array {
  const n = values.length;
  const result = out ?? new Uint16Array(n);
  if (dtype === 'bf16') {
    // fast path through a shared Uint32 view when the input is a Float32Array
    if (values instanceof Float32Array) {
      const bits = new Uint32Array(values.buffer, values.byteOffset, n);
      for (let i = 0; i < n; i++) result[i] = bf16CodeOfBits(bits[i]);
      return result;
    }
    for (let i = 0; i < n; i++) result[i] = f32ToBf16Bits(values[i]);
    return result;
  }
  for (let i = 0; i < n; i++) result[i] = f32ToF16Bits(values[i]);
  return result;
}

/** The bf16 code of a float32 given by its bits: round to nearest even; a NaN stays a quiet NaN. */
function bf16CodeOfBits(b: number): number {
  return (b & 0x7fffffff) > 0x7f800000
    ? ((b >>> 16) | 0x40) & 0xffff
    : ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * out[i] = table[the 16-bit code of values[i]] (rounded as toHalfBits rounds), without the codes
 * array: one pass for bf16. A per-code table (e.g. each code's nearest LUT entry) applied to
 * billions of weights.
 */
export function lookupByHalfCode(
  values: Float32Array,
  dtype: HalfDtype,
  table: Uint8Array,
  out: Uint8Array,
): void {
  const n = values.length;
  if (dtype === 'bf16') {
    const bits = new Uint32Array(values.buffer, values.byteOffset, n);
    for (let i = 0; i < n; i++) out[i] = table[bf16CodeOfBits(bits[i])];
    return;
  }
  for (let i = 0; i < n; i++) out[i] = table[f32ToF16Bits(values[i])];
}

/** 16-bit codes -> Float32Array of their exact values. */
export function fromHalfBits(
  bits: ArrayLike<number>,
  dtype: HalfDtype,
  out?: Float32Array,
): Float32Array {
  const n = bits.length;
  const result = out ?? new Float32Array(n);
  if (dtype === 'bf16') {
    const view = new Uint32Array(result.buffer, result.byteOffset, n);
    for (let i = 0; i < n; i++) view[i] = (bits[i] & 0xffff) << 16;
    return result;
  }
  const table = f16Table();
  for (let i = 0; i < n; i++) result[i] = table[bits[i] & 0xffff];
  return result;
}

/** Value of every 16-bit code of a dtype (65,536 floats), built once. */
export function halfValueTable(dtype: HalfDtype): Float32Array {
  return dtype === 'bf16' ? bf16Table() : f16Table();
}

let bf16Cache: Float32Array | undefined;
let f16Cache: Float32Array | undefined;
function bf16Table(): Float32Array {
  if (!bf16Cache) {
    bf16Cache = new Float32Array(65536);
    const view = new Uint32Array(bf16Cache.buffer);
    for (let c = 0; c < 65536; c++) view[c] = c << 16;
  }
  return bf16Cache;
}
function f16Table(): Float32Array {
  if (!f16Cache) {
    f16Cache = new Float32Array(65536);
    for (let c = 0; c < 65536; c++) f16Cache[c] = f16BitsToF32(c);
  }
  return f16Cache;
}

/** Rounds every value to the nearest representable value of `dtype` (returns a new array). */
export function roundToHalf(values: ArrayLike<number>, dtype: HalfDtype): Float32Array {
  return fromHalfBits(toHalfBits(values, dtype), dtype);
}
