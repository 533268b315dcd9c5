import { InvalidArgumentError, ShapeError, assertIntInRange } from '@edkm/core';
import { checkArrayLike, checkKind } from './check';

function badRow(op: string, i: number, value: number, rows: number): InvalidArgumentError {
  return new InvalidArgumentError(
    `${op}: indices[${i}] = ${value} is not a row of the table (must be an integer in [0, ${rows}))`,
  );
}

/**
 * The DKM forward's data movement: `out[i*k + j] = table[indices[i]*k + j]` for a row-major
 * [U, k] table. Every index is checked to lie in [0, U) (a bad one throws; `out` is then partly
 * written). Returns `out` (N·k floats), allocated when not given.
 */
export function gatherFromTable(
  table: Float32Array,
  k: number,
  indices: ArrayLike<number>,
  out?: Float32Array,
): Float32Array {
  const op = 'gatherFromTable';
  checkKind(op, 'table', table, ['Float32Array']);
  assertIntInRange(`${op}: k`, k, 1, 2 ** 31 - 1);
  checkArrayLike(op, 'indices', indices);
  if (table.length % k !== 0) {
    throw new ShapeError(`${op}: table length ${table.length} is not a multiple of k = ${k}`);
  }
  const rows = table.length / k;
  const n = indices.length;
  if (out === undefined) out = new Float32Array(n * k);
  else {
    checkKind(op, 'out', out, ['Float32Array']);
    if (out.length !== n * k) {
      throw new ShapeError(`${op}: out has ${out.length} floats, expected N·k = ${n * k}`);
    }
  }
  if (k === 1) {
    for (let i = 0; i < n; i++) {
      const r = indices[i];
      // r >>> 0 !== r also catches negatives, fractions and NaN from plain arrays
      if (r >>> 0 !== r || r >= rows) throw badRow(op, i, r, rows);
      out[i] = table[r];
    }
    return out;
  }
  if (k === 8) {
    // K = 8 is DKM at 3 bits; spelled out, it runs about twice as fast as the generic loop
    for (let i = 0, o = 0; i < n; i++, o += 8) {
      const r = indices[i];
      if (r >>> 0 !== r || r >= rows) throw badRow(op, i, r, rows);
      const t = r * 8;
      out[o] = table[t];
      out[o + 1] = table[t + 1];
      out[o + 2] = table[t + 2];
      out[o + 3] = table[t + 3];
      out[o + 4] = table[t + 4];
      out[o + 5] = table[t + 5];
      out[o + 6] = table[t + 6];
      out[o + 7] = table[t + 7];
    }
    return out;
  }
  for (let i = 0, o = 0; i < n; i++, o += k) {
    const r = indices[i];
    if (r >>> 0 !== r || r >= rows) throw badRow(op, i, r, rows);
    const t = r * k;
    for (let j = 0; j < k; j++) out[o + j] = table[t + j];
  }
  return out;
}

/**
 * The DKM backward's data movement: sums row i of the [N, k] `values` into row `indices[i]` of a
 * [numRows, k] table (`out`, overwritten; allocated when not given). Accumulates in float64, so
 * the result does not depend on the order of the elements beyond the final float32 rounding.
 */
export function scatterToTable(
  values: Float32Array,
  k: number,
  indices: ArrayLike<number>,
  numRows: number,
  out?: Float32Array,
): Float32Array {
  const op = 'scatterToTable';
  checkKind(op, 'values', values, ['Float32Array']);
  assertIntInRange(`${op}: k`, k, 1, 2 ** 31 - 1);
  checkArrayLike(op, 'indices', indices);
  assertIntInRange(`${op}: numRows`, numRows, 1, 2 ** 31 - 1);
  const n = indices.length;
  if (values.length !== n * k) {
    throw new ShapeError(
      `${op}: values has ${values.length} floats, expected N·k = ${n}·${k} = ${n * k}`,
    );
  }
  if (out !== undefined) {
    checkKind(op, 'out', out, ['Float32Array']);
    if (out.length !== numRows * k) {
      throw new ShapeError(
        `${op}: out has ${out.length} floats, expected numRows·k = ${numRows * k}`,
      );
    }
  }
  const acc = new Float64Array(numRows * k);
  if (k === 1) {
    for (let i = 0; i < n; i++) {
      const r = indices[i];
      if (r >>> 0 !== r || r >= numRows) throw badRow(op, i, r, numRows);
      acc[r] += values[i];
    }
  } else if (k === 8) {
    for (let i = 0, v = 0; i < n; i++, v += 8) {
      const r = indices[i];
      if (r >>> 0 !== r || r >= numRows) throw badRow(op, i, r, numRows);
      const t = r * 8;
      acc[t] += values[v];
      acc[t + 1] += values[v + 1];
      acc[t + 2] += values[v + 2];
      acc[t + 3] += values[v + 3];
      acc[t + 4] += values[v + 4];
      acc[t + 5] += values[v + 5];
      acc[t + 6] += values[v + 6];
      acc[t + 7] += values[v + 7];
    }
  } else {
    for (let i = 0, v = 0; i < n; i++, v += k) {
      const r = indices[i];
      if (r >>> 0 !== r || r >= numRows) throw badRow(op, i, r, numRows);
      const t = r * k;
      for (let j = 0; j < k; j++) acc[t + j] += values[v + j];
    }
  }
  const result = out ?? new Float32Array(numRows * k);
  result.set(acc);
  return result;
}
