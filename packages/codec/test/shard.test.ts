import { DTypeError, InvalidArgumentError, ShapeError } from '@edkm/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Shard, gatherFromTable, localIndices, merge, shard, uniquify } from '../src/index';

/** An index list (Uint16 or Uint32) and a shard count in [1, N]. */
const split = fc
  .tuple(
    fc.boolean(),
    fc.array(fc.integer({ min: 0, max: 70 }), { minLength: 1, maxLength: 200 }),
    fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 50 }),
  )
  .chain(([wide, small, huge]) => {
    const list = wide ? Uint32Array.from(small.length % 3 ? small : huge) : Uint16Array.from(small);
    return fc.tuple(fc.constant(list), fc.integer({ min: 1, max: list.length }));
  });

describe('shard / merge', () => {
  it('shard → merge is the identity (same type, bit-exact), in any shard order', () => {
    fc.assert(
      fc.property(split, fc.boolean(), fc.boolean(), ([list, parts], copy, reverse) => {
        const shards = shard(list, parts, { copy });
        const merged = merge(reverse ? [...shards].reverse() : shards);
        expect(merged.constructor).toBe(list.constructor);
        expect(Array.from(merged)).toEqual(Array.from(list));
        expect(merged).not.toBe(list);
      }),
    );
  });

  it('makes contiguous shards whose lengths differ by at most one, each knowing its rows', () => {
    fc.assert(
      fc.property(split, ([list, parts]) => {
        const shards = shard(list, parts);
        expect(shards.length).toBe(parts);
        let offset = 0;
        for (const [p, s] of shards.entries()) {
          expect(s.index).toBe(p);
          expect(s.offset).toBe(offset);
          expect(s.length).toBe(
            Math.floor(list.length / parts) + (p < list.length % parts ? 1 : 0),
          );
          expect(s.indices.buffer).toBe(list.buffer); // a view, no copy by default
          const expected = [...new Set(s.indices)].sort((a, b) => a - b);
          expect(Array.from(s.rows)).toEqual(expected);
          expect(s.byteSize).toBe(s.indices.byteLength + s.rows.byteLength);
          offset += s.length;
        }
        expect(offset).toBe(list.length);
      }),
    );
  });

  it('lets a worker gather with only its rows of the table (localIndices)', () => {
    fc.assert(
      fc.property(
        fc.float32Array({ noNaN: true, minLength: 1, maxLength: 300 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 3 }),
        (x, parts0, k) => {
          const u = uniquify(x, { dtype: 'bf16' });
          const table = Float32Array.from({ length: u.values.length * k }, (_, i) => i * 0.5 - 3);
          const full = gatherFromTable(table, k, u.indices);
          const parts = Math.min(parts0, x.length);
          for (const s of shard(u.indices, parts, { copy: true })) {
            expect(s.indices.buffer).not.toBe(u.indices.buffer);
            const local = localIndices(s);
            const subTable = gatherFromTable(table, k, s.rows); // the rows this worker holds
            const part = gatherFromTable(subTable, k, local);
            expect(Array.from(part)).toEqual(
              Array.from(full.subarray(s.offset * k, (s.offset + s.length) * k)),
            );
          }
        },
      ),
    );
    // sparse huge row values take the sort / binary-search paths
    const wide = Uint32Array.from([4e9, 7, 4e9, 3e9, 7]);
    const [a, b] = shard(wide, 2);
    expect(Array.from(a.rows)).toEqual([7, 4e9]);
    expect(Array.from(localIndices(a))).toEqual([1, 0, 1]);
    expect(Array.from(b.rows)).toEqual([7, 3e9]);
    expect(Array.from(localIndices(b))).toEqual([1, 0]);
  });

  it('rejects bad shard counts, empty and mistyped lists, and inconsistent shards', () => {
    const list = Uint16Array.from([1, 2, 3, 4, 5]);
    for (const parts of [0, -1, 6, 2.5, Number.NaN]) {
      expect(() => shard(list, parts)).toThrow(InvalidArgumentError);
    }
    expect(() => shard(list, 6)).toThrow(/parts .* must be an integer in \[1, 5\], got 6/);
    expect(() => shard(new Uint16Array(0), 1)).toThrow(ShapeError);
    expect(() => shard(Int32Array.from([1]) as never, 1)).toThrow(DTypeError);
    expect(() => shard([1, 2] as never, 1)).toThrow(DTypeError);

    const shards = shard(list, 3);
    expect(() => merge([])).toThrow(InvalidArgumentError);
    expect(() => merge([shards[0], shards[2]])).toThrow(/a gap/);
    expect(() => merge([shards[0], shards[0], shards[1], shards[2]])).toThrow(/an overlap/);
    expect(() => merge([shards[0], { ...shards[1], length: 5 }, shards[2]])).toThrow(ShapeError);
    const wide: Shard = { ...shards[1], indices: Uint32Array.from(shards[1].indices) };
    expect(() => merge([shards[0], wide, shards[2]])).toThrow(/mix Uint16Array and Uint32Array/);
    expect(() => merge([shards[0], { ...shards[1], index: 2 }, shards[2]])).toThrow(ShapeError);
    expect(() => merge([{ ...shards[0], indices: [1, 2] as never }])).toThrow(DTypeError);
    expect(() => localIndices({ ...shards[0], rows: Uint32Array.from([1]) })).toThrow(
      /indices\[1\] = 2 is not among shard.rows/,
    );
  });
});
