import { DTypeError, InvalidArgumentError, ShapeError, reference } from '@edkm/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { gatherFromTable, scatterToTable, uniquify } from '../src/index';

/** A [U, k] table, N row indices into it, and [N, k] per-element values. */
const problem = fc
  .record({
    u: fc.integer({ min: 1, max: 40 }),
    k: fc.oneof(fc.constant(1), fc.constant(8), fc.integer({ min: 1, max: 17 })),
    n: fc.integer({ min: 0, max: 200 }),
  })
  .chain(({ u, k, n }) =>
    fc.record({
      u: fc.constant(u),
      k: fc.constant(k),
      table: fc.float32Array({ noNaN: true, minLength: u * k, maxLength: u * k }),
      indices: fc.array(fc.integer({ min: 0, max: u - 1 }), { minLength: n, maxLength: n }),
      values: fc.float32Array({
        noDefaultInfinity: true,
        noNaN: true,
        min: -1e6,
        max: 1e6,
        minLength: n * k,
        maxLength: n * k,
      }),
    }),
  );

describe('gatherFromTable / scatterToTable', () => {
  it('match core’s plain kernel references for every index array type', () => {
    fc.assert(
      fc.property(problem, ({ u, k, table, indices, values }) => {
        const i32 = Int32Array.from(indices);
        const expectedGather = reference.gatherRows(table, k, i32);
        const expectedScatter = reference.scatterAddRows(values, k, i32, u);
        for (const idx of [indices, Uint16Array.from(indices), Uint32Array.from(indices), i32]) {
          expect(gatherFromTable(table, k, idx)).toEqual(expectedGather);
          expect(scatterToTable(values, k, idx, u)).toEqual(expectedScatter);
        }
      }),
    );
  });

  it('scatter is the adjoint of gather: <gather(T), V> = <T, scatter(V)>', () => {
    fc.assert(
      fc.property(problem, ({ u, k, indices, values }) => {
        const table = Float32Array.from({ length: u * k }, (_, i) => ((i * 37) % 11) - 5);
        const g = gatherFromTable(table, k, indices);
        const s = scatterToTable(values, k, indices, u);
        let lhs = 0;
        let rhs = 0;
        let scale = 0; // the float32 rounding of each scattered sum bounds the difference
        for (let i = 0; i < g.length; i++) lhs += g[i] * values[i];
        for (let i = 0; i < s.length; i++) {
          rhs += table[i] * s[i];
          scale += Math.abs(table[i] * s[i]);
        }
        expect(Math.abs(lhs - rhs)).toBeLessThanOrEqual(2 ** -23 * scale + 1e-12);
      }),
    );
  });

  it('scatter of ones over uniquified rows gives the counts; out buffers are overwritten', () => {
    const x = Float32Array.from([0.1, 0.2, 0.1, -3, 0.1, 0.2]);
    const u = uniquify(x, { dtype: 'bf16' });
    const out = new Float32Array(u.values.length).fill(42);
    expect(scatterToTable(new Float32Array(6).fill(1), 1, u.indices, u.values.length, out)).toBe(
      out,
    );
    expect(Array.from(out)).toEqual(Array.from(u.counts));
    const g = new Float32Array(6 * 2).fill(7);
    const t2 = Float32Array.from([1, 2, 3, 4, 5, 6]);
    expect(gatherFromTable(t2, 2, [2, 0, 1, 1, 0, 2], g)).toBe(g);
    expect(Array.from(g)).toEqual([5, 6, 1, 2, 3, 4, 3, 4, 1, 2, 5, 6]);
  });

  it('accumulates in float64: the result is order-independent before the final rounding', () => {
    const values = Float32Array.from([1e8, 1, -1e8, 1]);
    expect(Array.from(scatterToTable(values, 1, [0, 0, 0, 0], 1))).toEqual([2]);
  });

  it('rejects bad k, rows, shapes and out-of-range indices with typed errors', () => {
    const t = new Float32Array(6);
    expect(() => gatherFromTable(t, 0, [0])).toThrow(InvalidArgumentError);
    expect(() => gatherFromTable(t, 4, [0])).toThrow(ShapeError);
    expect(() => gatherFromTable(t, 2, [3])).toThrow(
      'gatherFromTable: indices[0] = 3 is not a row of the table (must be an integer in [0, 3))',
    );
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 32]) {
      expect(() => gatherFromTable(t, 2, [0, bad])).toThrow(InvalidArgumentError);
      expect(() => scatterToTable(new Float32Array(4), 2, [0, bad], 3)).toThrow(/indices\[1\]/);
    }
    expect(() => gatherFromTable(new Float32Array(0), 1, [0])).toThrow(InvalidArgumentError);
    expect(() => gatherFromTable(new Float64Array(6) as never, 2, [0])).toThrow(DTypeError);
    expect(() => gatherFromTable(t, 2, 'ab' as never)).toThrow(DTypeError);
    expect(() => gatherFromTable(t, 2, [0], new Float32Array(3))).toThrow(ShapeError);
    expect(() => scatterToTable(new Float32Array(3), 2, [0, 1], 3)).toThrow(ShapeError);
    expect(() => scatterToTable(new Float32Array(4), 2, [0, 1], 0)).toThrow(InvalidArgumentError);
    expect(() => scatterToTable(new Float32Array(4), 2, [0, 2], 2)).toThrow(InvalidArgumentError);
    expect(() => scatterToTable(new Float32Array(4), 2, [0, 1], 2, new Float32Array(3))).toThrow(
      ShapeError,
    );
    expect(gatherFromTable(t, 2, []).length).toBe(0);
  });
});
