import vm from 'node:vm';
import {
  DTypeError,
  InvalidArgumentError,
  NonFiniteError,
  ShapeError,
  halfValueTable,
  roundToHalf,
  toHalfBits,
} from '@edkm/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { gatherFromTable, uniquify } from '../src/index';
import { bitsOf, firstMismatch, isNaNCode, naiveUniquify } from './reference';

const dtypes = ['bf16', 'fp16'] as const;
const forms = ['compact', 'code'] as const;
/** Float32 arrays without NaN: ±0, ±Inf, subnormals, huge values included. */
const floats = (maxLength = 200) => fc.float32Array({ noNaN: true, minLength: 1, maxLength });
/** Arbitrary float32 bit patterns (every exponent and mantissa alike), NaN excluded. */
const bitPatterns = fc
  .array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 200 })
  .map(
    (a) =>
      new Float32Array(
        Uint32Array.from(a, (b) => ((b & 0x7fffffff) > 0x7f800000 ? b & 0xff800000 : b)).buffer,
      ),
  );

describe.each(dtypes)('uniquify %s', (dtype) => {
  it('matches a naive Map-based uniquify (codes, sorted distinct codes, values, counts, rows)', () => {
    fc.assert(
      fc.property(fc.oneof(floats(), bitPatterns), (x) => {
        const ref = naiveUniquify(x, dtype);
        const c = uniquify(x, { dtype });
        const k = uniquify(x, { dtype, index: 'code' });
        expect(Array.from(c.uniqueCodes)).toEqual(ref.uniqueCodes);
        expect(bitsOf(c.values)).toEqual(bitsOf(Float32Array.from(ref.values)));
        expect(Array.from(c.counts)).toEqual(ref.counts);
        expect(Array.from(c.indices)).toEqual(ref.rows);
        expect(Array.from(k.indices)).toEqual(ref.codes);
        expect(c.indices).toBeInstanceOf(Uint16Array);
        expect(k.indices).toBeInstanceOf(Uint16Array);
        for (const [r, code] of ref.uniqueCodes.entries()) expect(c.codeToRow[code]).toBe(r);
        expect(c.codeToRow.reduce((s, r) => s + (r >= 0 ? 1 : 0), 0)).toBe(ref.uniqueCodes.length);
      }),
    );
  });

  it.each(forms)(
    'uniquify → gather reproduces the %s-rounded input bit-exactly (%s indices)',
    (form) => {
      fc.assert(
        fc.property(fc.oneof(floats(), bitPatterns), (x) => {
          const u = uniquify(x, { dtype, index: form });
          const table = form === 'compact' ? u.values : halfValueTable(dtype);
          const back = gatherFromTable(table, 1, u.indices);
          expect(bitsOf(back)).toEqual(bitsOf(roundToHalf(x, dtype)));
          expect(u.n).toBe(x.length);
          expect(u.counts.reduce((s, c) => s + c, 0)).toBe(x.length);
        }),
      );
    },
  );

  it('gives the same codes as core toHalfBits over a stride of all float32 bit patterns', () => {
    const x = new Float32Array(1 << 20);
    const bits = new Uint32Array(x.buffer);
    for (let i = 0; i < bits.length; i++) {
      const b = Math.imul(i, 4099) >>> 0; // 4099 is odd: distinct patterns over every exponent
      bits[i] = (b & 0x7fffffff) > 0x7f800000 ? 0x3f800000 : b;
    }
    const u = uniquify(x, { dtype, index: 'code' });
    const expected = toHalfBits(x, dtype);
    expect(firstMismatch(u.indices, expected)).toBe(-1); // toEqual on 1M elements is slow
  });

  it('rounds exact halfway points to even and keeps ±0, ±Inf and subnormals as their own codes', () => {
    const shift = dtype === 'bf16' ? 16 : 13;
    const x = new Float32Array(2000);
    const bits = new Uint32Array(x.buffer);
    for (let i = 0; i < 1000; i++)
      bits[i] = ((0x3c000000 + i * 7919) & ~((1 << shift) - 1)) | (1 << (shift - 1));
    x.set(
      [0, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e-6, -3e-8, 1e-40, 7e4, -1e30],
      1000,
    );
    const u = uniquify(x, { dtype });
    expect(u.indices).toEqual(Uint16Array.from(toHalfBits(x, dtype), (c) => u.codeToRow[c]));
    expect(bitsOf(gatherFromTable(u.values, 1, u.indices))).toEqual(bitsOf(roundToHalf(x, dtype)));
    const zeros = uniquify(Float32Array.from([0, -0, 0, -0, -0]), { dtype });
    expect(Array.from(zeros.uniqueCodes)).toEqual([0x0000, 0x8000]);
    expect(Array.from(zeros.counts)).toEqual([2, 3]);
    expect(Object.is(zeros.values[1], -0)).toBe(true);
    const inf = uniquify(
      Float32Array.from([Number.POSITIVE_INFINITY, 1, Number.NEGATIVE_INFINITY]),
      {
        dtype,
      },
    );
    expect(Array.from(inf.values)).toEqual([1, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
  });

  it('accepts raw 16-bit codes: every non-NaN code once gives U = 65536 − #NaN codes', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, c) => c).filter(
      (c) => !isNaNCode(c, dtype),
    );
    const u = uniquify(all.slice().reverse(), { dtype });
    expect(firstMismatch(u.uniqueCodes, all)).toBe(-1);
    const values = halfValueTable(dtype).filter((_, c) => !isNaNCode(c, dtype));
    expect(firstMismatch(bitsOf(u.values), bitsOf(values))).toBe(-1);
    expect(u.counts.every((c) => c === 1)).toBe(true);
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 300 }),
        (a) => {
          const codes = Uint16Array.from(a, (c) => (isNaNCode(c, dtype) ? c & 0x8000 : c));
          const compact = uniquify(codes, { dtype });
          const code = uniquify(codes, { dtype, index: 'code' });
          expect(code.indices).toBe(codes); // no copy
          expect(Array.from(gatherFromTable(compact.values, 1, compact.indices))).toEqual(
            Array.from(codes, (c) => halfValueTable(dtype)[c]),
          );
        },
      ),
    );
  });

  it('writes into a reused `out` buffer, also in place over its own codes', () => {
    const x = Float32Array.from([0.5, -1, 0.5, 3, -0]);
    const out = new Uint16Array(5).fill(999);
    const u = uniquify(x, { dtype, out });
    expect(u.indices).toBe(out);
    expect(Array.from(out)).toEqual(Array.from(uniquify(x, { dtype }).indices));
    const codes = toHalfBits(x, dtype);
    const expected = uniquify(codes.slice(), { dtype }).indices;
    const inPlace = uniquify(codes, { dtype, out: codes });
    expect(inPlace.indices).toBe(codes);
    expect(codes).toEqual(expected);
    const copyOut = new Uint16Array(5);
    const c2 = toHalfBits(x, dtype);
    expect(uniquify(c2, { dtype, index: 'code', out: copyOut }).indices).toBe(copyOut);
    expect(copyOut).toEqual(c2);
  });

  it('reports byteSize as the bytes of all its arrays', () => {
    const u = uniquify(new Float32Array([1, 2, 2, 3, 3, 3]), { dtype });
    expect(u.values.length).toBe(3);
    // 3 codes (2 B) + 3 values (4 B) + 3 counts (4 B) + 6 indices (2 B) + 65,536 rows (4 B)
    expect(u.byteSize).toBe(3 * 2 + 3 * 4 + 3 * 4 + 6 * 2 + 65536 * 4);
  });

  it('throws NonFiniteError for NaN, including NaN payloads that plain rounding would turn into Inf', () => {
    for (const bits of [0x7fc00000, 0x7f800001, 0xff800001, 0xffffffff, 0x7f80ffff]) {
      const x = new Float32Array([1, 2, 3]);
      new Uint32Array(x.buffer)[2] = bits;
      expect(() => uniquify(x, { dtype })).toThrow(NonFiniteError);
      expect(() => uniquify(x, { dtype })).toThrow(/values\[2\] is NaN/);
    }
    const nanCode = dtype === 'bf16' ? 0x7fc0 : 0x7e00;
    expect(() => uniquify(Uint16Array.from([1, nanCode | 0x8000]), { dtype })).toThrow(
      /values\[1\] is a .*NaN/,
    );
    expect(() => uniquify(Uint16Array.from([nanCode]), { dtype })).toThrow(NonFiniteError);
  });
});

describe('uniquify inputs', () => {
  it('reads subarray views at their offset and typed arrays from another realm (worker, vm)', () => {
    const big = Float32Array.from({ length: 20 }, (_, i) => i * 0.37 - 3);
    const view = big.subarray(3, 11);
    const u = uniquify(view, { dtype: 'bf16' });
    expect(bitsOf(gatherFromTable(u.values, 1, u.indices))).toEqual(
      bitsOf(roundToHalf(view, 'bf16')),
    );
    const foreign = vm.runInNewContext('new Float32Array([0.5, -0, 0.5])') as Float32Array;
    expect(foreign instanceof Float32Array).toBe(false);
    expect(Array.from(uniquify(foreign, { dtype: 'fp16' }).counts)).toEqual([2, 1]);
    const foreignCodes = vm.runInNewContext('new Uint16Array([5, 5, 7])') as Uint16Array;
    expect(Array.from(uniquify(foreignCodes, { dtype: 'bf16' }).indices)).toEqual([0, 0, 1]);
  });
});

describe('uniquify bad input', () => {
  it('rejects wrong array types, dtypes, index forms, empty input and bad out buffers', () => {
    const x = new Float32Array([1, 2]);
    for (const bad of [new Float64Array(2), new Int32Array(2), [1, 2], null, 'abc']) {
      expect(() => uniquify(bad as never, { dtype: 'bf16' })).toThrow(DTypeError);
    }
    expect(() => uniquify(new Float64Array(2) as never, { dtype: 'bf16' })).toThrow(
      /Float32Array or Uint16Array, got Float64Array/,
    );
    expect(() => uniquify(x, { dtype: 'f16' as never })).toThrow(InvalidArgumentError);
    expect(() => uniquify(x, undefined as never)).toThrow(InvalidArgumentError);
    expect(() => uniquify(x, { dtype: 'bf16', index: 'rows' as never })).toThrow(
      InvalidArgumentError,
    );
    expect(() => uniquify(new Float32Array(0), { dtype: 'bf16' })).toThrow(ShapeError);
    expect(() => uniquify(new Uint16Array(0), { dtype: 'fp16' })).toThrow(/empty/);
    expect(() => uniquify(x, { dtype: 'bf16', out: new Uint16Array(3) })).toThrow(ShapeError);
    expect(() => uniquify(x, { dtype: 'bf16', out: new Uint32Array(2) as never })).toThrow(
      DTypeError,
    );
  });
});
