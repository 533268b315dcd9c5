import { DTypeError, InvalidArgumentError, ShapeError } from '@edkm/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromPacked, packIndices, packedByteLength, toPacked, unpackIndices } from '../src/index';
import { firstMismatch, naivePack } from './reference';

const BITS = [1, 2, 3, 4, 5, 6, 7, 8];
/** bits and a list of values in [0, 2^bits), lengths 0..300 (mostly not multiples of 8 or 32). */
const packable = fc
  .integer({ min: 1, max: 8 })
  .chain((bits) =>
    fc.tuple(
      fc.constant(bits),
      fc.array(fc.integer({ min: 0, max: 2 ** bits - 1 }), { maxLength: 300 }),
    ),
  );

describe('packIndices / unpackIndices', () => {
  it('round-trips bit-exactly for every bits value 1..8 and any length, in the naive byte layout', () => {
    fc.assert(
      fc.property(packable, ([bits, values]) => {
        const bytes = packIndices(values, bits);
        expect(bytes.length).toBe(packedByteLength(values.length, bits));
        expect(Array.from(bytes)).toEqual(Array.from(naivePack(values, bits)));
        expect(Array.from(unpackIndices(bytes, bits, values.length))).toEqual(values);
      }),
      { numRuns: 400 },
    );
  });

  it.each(BITS)('%i bits: large lists through the word path, from every array type', (bits) => {
    for (const n of [31, 32, 33, 64 * 1024 + 13]) {
      const u8 = Uint8Array.from(
        { length: n },
        (_, i) => (Math.imul(i + bits, 2654435761) >>> 13) & ((1 << bits) - 1),
      );
      const bytes = packIndices(u8, bits);
      expect(firstMismatch(bytes, naivePack(u8, bits))).toBe(-1);
      expect(firstMismatch(unpackIndices(bytes, bits, n), u8)).toBe(-1);
      for (const other of [Uint16Array.from(u8), Int32Array.from(u8), Array.from(u8)]) {
        expect(firstMismatch(packIndices(other, bits), bytes)).toBe(-1);
      }
    }
  });

  it('lays out 3-bit values little-endian, LSB first, zero-padded', () => {
    // 1,2,3,4,5,6,7,0 → bit stream 001 010 110 001 101 011 111 000 (LSB first per value)
    expect(Array.from(packIndices([1, 2, 3, 4, 5, 6, 7, 0], 3))).toEqual([0xd1, 0x58, 0x1f]);
    expect(Array.from(packIndices([7], 3))).toEqual([0x07]);
    expect(Array.from(packIndices([1, 0, 1], 1))).toEqual([0x05]);
    expect(Array.from(packIndices([0xab, 0x01], 8))).toEqual([0xab, 0x01]);
    expect(packIndices([], 5).length).toBe(0);
    expect(unpackIndices(new Uint8Array(0), 5, 0).length).toBe(0);
  });

  it('reads unaligned views, longer buffers and writes into given out buffers', () => {
    fc.assert(
      fc.property(packable, fc.integer({ min: 1, max: 7 }), ([bits, values], shift) => {
        const packed = packIndices(values, bits);
        const buf = new Uint8Array(packed.length + shift + 3);
        buf.set(packed, shift);
        const view = buf.subarray(shift); // unaligned and 3 bytes longer than needed
        const out = new Uint8Array(values.length);
        expect(unpackIndices(view, bits, values.length, out)).toBe(out);
        expect(Array.from(out)).toEqual(values);
        const into = new Uint8Array(packed.length + shift).subarray(shift);
        expect(packIndices(values, bits, into)).toBe(into);
        expect(Array.from(into)).toEqual(Array.from(packed));
        const reused = new Uint8Array(packed.length).fill(0xff); // stale contents are overwritten
        expect(Array.from(packIndices(values, bits, reused))).toEqual(Array.from(packed));
      }),
    );
  });

  it('toPacked / fromPacked carry bits, n and byteSize', () => {
    const p = toPacked(Uint8Array.from([5, 1, 7, 0, 3]), 3);
    expect(p).toMatchObject({ bits: 3, n: 5, byteSize: 2 });
    expect(Array.from(fromPacked(p))).toEqual([5, 1, 7, 0, 3]);
  });

  it('packedByteLength is ⌈n·bits/8⌉', () => {
    expect(packedByteLength(0, 3)).toBe(0);
    expect(packedByteLength(1, 3)).toBe(1);
    expect(packedByteLength(8, 3)).toBe(3);
    expect(packedByteLength(9, 3)).toBe(4);
    expect(packedByteLength(45_088_768, 3)).toBe(16_908_288);
    expect(packedByteLength(3, 6)).toBe(3);
  });

  it('rejects bad bits, out-of-range values, short buffers and wrong types with typed errors', () => {
    for (const bits of [0, 9, -1, 2.5, Number.NaN, '3']) {
      expect(() => packIndices([0], bits as number)).toThrow(InvalidArgumentError);
      expect(() => unpackIndices(new Uint8Array(1), bits as number, 1)).toThrow(
        InvalidArgumentError,
      );
      expect(() => packedByteLength(1, bits as number)).toThrow(
        /bits must be an integer in \[1, 8\]/,
      );
    }
    // index >= 2^bits, negative, fractional, NaN: also past the first word-path block
    for (const [bad, at] of [
      [8, 0],
      [8, 40],
      [-1, 3],
      [1.5, 70],
      [Number.NaN, 33],
    ] as const) {
      const values = new Array(100).fill(1);
      values[at] = bad;
      expect(() => packIndices(values, 3)).toThrow(InvalidArgumentError);
      expect(() => packIndices(values, 3)).toThrow(
        `indices[${at}] = ${bad} does not fit in 3 bits`,
      );
    }
    expect(() => packIndices(Uint8Array.from([255, 256 - 2]), 7)).toThrow(/\[0, 128\)/);
    expect(() => packIndices(Uint16Array.from([256]), 8)).toThrow(InvalidArgumentError);
    expect(() => unpackIndices(new Uint8Array(3), 3, 9)).toThrow(ShapeError);
    expect(() => unpackIndices(new Uint8Array(3), 3, 8, new Uint8Array(7))).toThrow(ShapeError);
    expect(() => unpackIndices(new Uint8Array(3), 3, -1)).toThrow(InvalidArgumentError);
    expect(() => unpackIndices([1, 2, 3] as never, 3, 8)).toThrow(DTypeError);
    expect(() => unpackIndices(new Uint16Array(3) as never, 3, 8)).toThrow(DTypeError);
    expect(() => packIndices([1, 2], 3, new Uint8Array(2))).toThrow(ShapeError);
    expect(() => packIndices(null as never, 3)).toThrow(DTypeError);
    expect(() => packIndices('123' as never, 3)).toThrow(DTypeError);
  });
});
