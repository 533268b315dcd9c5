import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bf16BitsToF32,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  fromHalfBits,
  halfValueTable,
  lookupByHalfCode,
  roundToHalf,
  toHalfBits,
} from '../src/half';

/** Plain reference: the nearest of the sorted finite values of a dtype, ties to the even code. */
function nearestCode(x: number, dtype: 'bf16' | 'fp16'): number {
  const decode = dtype === 'bf16' ? bf16BitsToF32 : f16BitsToF32;
  const encode = dtype === 'bf16' ? f32ToBf16Bits : f32ToF16Bits;
  const fx = Math.fround(x);
  const c = encode(fx);
  // check every neighbour code is not strictly closer, and ties go to an even mantissa
  const v = decode(c);
  for (const d of [-1, 1]) {
    const n = (c + d) & 0xffff;
    const nv = decode(n);
    if (!Number.isFinite(nv) || (Math.sign(nv) !== Math.sign(v) && v !== 0)) continue;
    const e0 = Math.abs(v - fx);
    const e1 = Math.abs(nv - fx);
    if (Number.isFinite(v) && e1 < e0)
      throw new Error(`${dtype}: ${fx} -> ${v} but ${nv} is closer`);
    if (Number.isFinite(v) && e1 === e0 && (c & 1) === 1 && e0 !== 0)
      throw new Error(`${dtype}: tie of ${fx} not to even`);
  }
  return c;
}

describe('bf16/fp16 conversions', () => {
  it('decode → encode is the identity on every non-NaN code', () => {
    for (const dtype of ['bf16', 'fp16'] as const) {
      const table = halfValueTable(dtype);
      const bits = toHalfBits(table, dtype);
      for (let c = 0; c < 65536; c++) {
        if (Number.isNaN(table[c]))
          expect(Number.isNaN(fromHalfBits([bits[c]], dtype)[0])).toBe(true);
        else if (bits[c] !== c) throw new Error(`${dtype} code ${c} -> ${table[c]} -> ${bits[c]}`);
      }
    }
  });

  it('rounds to nearest, ties to even (property, against neighbour search)', () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true, noDefaultInfinity: false }), (x) => {
        nearestCode(x, 'bf16');
        if (Math.abs(x) < 65504) nearestCode(x, 'fp16');
      }),
      { numRuns: 20000 },
    );
  });

  it('handles exact ties, overflow, subnormals, ±0, Inf and NaN', () => {
    // 1 + 2^-8 is halfway between bf16 1 and 1+2^-7: ties to even (1)
    expect(bf16BitsToF32(f32ToBf16Bits(1 + 2 ** -8))).toBe(1);
    expect(bf16BitsToF32(f32ToBf16Bits(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6);
    expect(f16BitsToF32(f32ToF16Bits(1 + 2 ** -11))).toBe(1);
    expect(f16BitsToF32(f32ToF16Bits(65504))).toBe(65504);
    expect(f16BitsToF32(f32ToF16Bits(65519))).toBe(65504);
    expect(f16BitsToF32(f32ToF16Bits(65520))).toBe(Number.POSITIVE_INFINITY);
    expect(f16BitsToF32(f32ToF16Bits(2 ** -24))).toBe(2 ** -24);
    expect(f16BitsToF32(f32ToF16Bits(2 ** -25))).toBe(0);
    expect(f16BitsToF32(f32ToF16Bits(1.5 * 2 ** -25))).toBe(2 ** -24);
    expect(Object.is(f16BitsToF32(f32ToF16Bits(-0)), -0)).toBe(true);
    expect(Object.is(bf16BitsToF32(f32ToBf16Bits(-0)), -0)).toBe(true);
    expect(f32ToF16Bits(Number.NEGATIVE_INFINITY)).toBe(0xfc00);
    expect(f32ToBf16Bits(Number.POSITIVE_INFINITY)).toBe(0x7f80);
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(Number.NaN)))).toBe(true);
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(Number.NaN)))).toBe(true);
    // a NaN whose payload sits only in the low bits must not become Inf
    const f = new Float32Array(1);
    new Uint32Array(f.buffer)[0] = 0x7f800001;
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(f[0])))).toBe(true);
    expect(Array.from(roundToHalf([0.1, 1000.3], 'bf16'))).toEqual([
      bf16BitsToF32(f32ToBf16Bits(0.1)),
      1000,
    ]);
  });

  it('the Float32Array fast path agrees with the scalar path', () => {
    fc.assert(
      fc.property(fc.float32Array({ minLength: 1, maxLength: 64 }), (arr) => {
        const fast = toHalfBits(arr, 'bf16');
        const slow = Array.from(arr, (x) => f32ToBf16Bits(x));
        expect(Array.from(fast)).toEqual(slow);
      }),
    );
  });
});

describe('lookupByHalfCode', () => {
  it.each(['bf16', 'fp16'] as const)(
    '%s: table[toHalfBits(x)] for every value, NaN and ±Inf included',
    (dtype) => {
      const values = Float32Array.from(
        { length: 5000 },
        (_, i) => Math.sin(i * 12.9898) * 10 ** ((i % 9) - 5),
      );
      values.set(
        [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0, -0, 1.00390625],
        0,
      );
      const table = Uint8Array.from({ length: 65536 }, (_, c) => (c * 2654435761) >>> 24);
      const out = new Uint8Array(values.length + 2);
      lookupByHalfCode(values, dtype, table, out.subarray(1));
      const codes = toHalfBits(values, dtype);
      expect(out[0]).toBe(0);
      expect(out[values.length + 1]).toBe(0);
      expect(Array.from(out.subarray(1, values.length + 1))).toEqual(
        Array.from(codes, (c) => table[c]),
      );
    },
  );
});
