import { InvalidArgumentError, ShapeError, assertIntInRange } from '@edkm/core';
import { checkKind, typedKind } from './check';

/** One contiguous piece of an index list, with the distinct table rows it refers to. */
export interface Shard {
  /** Position of this shard among all shards (0-based). */
  index: number;
  /** First element of the full list that this shard holds. */
  offset: number;
  length: number;
  /** The list's entries [offset, offset + length): a view of the input unless `copy` was set. */
  indices: Uint16Array | Uint32Array;
  /** Distinct values of `indices` (the table rows this shard needs), ascending. */
  rows: Uint32Array;
  /** indices.byteLength + rows.byteLength: what a worker holding this shard stores. */
  byteSize: number;
}

export interface ShardOptions {
  /**
   * Copy each shard's indices into its own buffer (to transfer to a worker without detaching the
   * whole list). Default false: subarray views, no copy.
   */
  copy?: boolean;
}

const INDEX_KINDS = ['Uint16Array', 'Uint32Array'];

/**
 * Splits an index list into `parts` contiguous shards whose lengths differ by at most one (the
 * first N mod parts shards are one longer). O(N + Σ rows·log rows).
 */
export function shard(
  indices: Uint16Array | Uint32Array,
  parts: number,
  opts: ShardOptions = {},
): Shard[] {
  const op = 'shard';
  checkKind(op, 'indices', indices, INDEX_KINDS);
  const n = indices.length;
  if (n === 0) throw new ShapeError(`${op}: the index list is empty: nothing to shard`);
  assertIntInRange(`${op}: parts (shards of a ${n}-element index list)`, parts, 1, n);
  const rowsOf = distinctRows(indices, Math.ceil(n / parts));
  const base = Math.floor(n / parts);
  const extra = n % parts;
  const shards: Shard[] = [];
  for (let p = 0, offset = 0; p < parts; p++) {
    const length = base + (p < extra ? 1 : 0);
    const view = indices.subarray(offset, offset + length);
    const rows = rowsOf(view);
    const own = opts.copy ? view.slice() : view;
    shards.push({
      index: p,
      offset,
      length,
      indices: own,
      rows,
      byteSize: own.byteLength + rows.byteLength,
    });
    offset += length;
  }
  return shards;
}

/** Reassembles the index list from all of its shards (in any order), bit-exactly. */
export function merge(shards: Shard[]): Uint16Array | Uint32Array {
  const op = 'merge';
  if (!Array.isArray(shards) || shards.length === 0) {
    throw new InvalidArgumentError(`${op}: expected a non-empty array of shards`);
  }
  const kind = typedKind(shards[0]?.indices);
  for (const s of shards) {
    checkKind(op, 'every shard.indices', s?.indices, INDEX_KINDS);
    if (typedKind(s.indices) !== kind) {
      throw new InvalidArgumentError(
        `${op}: shards mix ${kind} and ${typedKind(s.indices)} indices`,
      );
    }
    if (s.indices.length !== s.length) {
      throw new ShapeError(
        `${op}: shard ${s.index} says length ${s.length} but holds ${s.indices.length} indices`,
      );
    }
  }
  const ordered = [...shards].sort((a, b) => a.offset - b.offset);
  let total = 0;
  for (const [p, s] of ordered.entries()) {
    if (s.offset !== total) {
      throw new ShapeError(
        `${op}: shard ${s.index} starts at ${s.offset}, expected ${total} (${s.offset > total ? 'a gap' : 'an overlap'}): the shards must tile [0, N)`,
      );
    }
    if (s.index !== p) {
      throw new ShapeError(
        `${op}: shard at offset ${s.offset} has index ${s.index}, expected ${p}`,
      );
    }
    total += s.length;
  }
  const out = kind === 'Uint16Array' ? new Uint16Array(total) : new Uint32Array(total);
  for (const s of ordered) out.set(s.indices, s.offset);
  return out;
}

/**
 * A shard's indices as positions into its own `rows`, so that a worker can hold only the table
 * rows `rows` (e.g. `gatherFromTable(table, k, shard.rows)`) and still gather every element.
 */
export function localIndices(s: Shard): Uint16Array | Uint32Array {
  const op = 'localIndices';
  checkKind(op, 'shard.indices', s?.indices, INDEX_KINDS);
  checkKind(op, 'shard.rows', s.rows, ['Uint32Array']);
  const { indices, rows } = s;
  const u = rows.length;
  const n = indices.length;
  const out = u <= 65536 ? new Uint16Array(n) : new Uint32Array(n);
  const missing = (i: number) =>
    new InvalidArgumentError(`${op}: indices[${i}] = ${indices[i]} is not among shard.rows`);
  const maxRow = u > 0 ? rows[u - 1] : 0;
  if (maxRow < Math.max(65536, 4 * n)) {
    const pos = new Int32Array(maxRow + 1).fill(-1);
    for (let j = 0; j < u; j++) pos[rows[j]] = j;
    for (let i = 0; i < n; i++) {
      const p = pos[indices[i]];
      if (!(p >= 0)) throw missing(i);
      out[i] = p;
    }
    return out;
  }
  for (let i = 0; i < n; i++) {
    const v = indices[i];
    let lo = 0;
    let hi = u;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (rows[mid] < v) lo = mid + 1;
      else hi = mid;
    }
    if (rows[lo] !== v) throw missing(i);
    out[i] = lo;
  }
  return out;
}

/**
 * Returns a function giving the sorted distinct values of a piece of `all`: a reusable flag array
 * over the value range when it is small, else sort + dedupe.
 */
function distinctRows(
  all: Uint16Array | Uint32Array,
  maxPiece: number,
): (piece: Uint16Array | Uint32Array) => Uint32Array {
  let max = 65535;
  if (all instanceof Uint32Array || typedKind(all) === 'Uint32Array') {
    max = 0;
    for (let i = 0; i < all.length; i++) if (all[i] > max) max = all[i];
  }
  if (max >= Math.max(65536, 4 * all.length)) {
    return (piece) => {
      const sorted = Uint32Array.from(piece).sort();
      let u = 0;
      for (let i = 0; i < sorted.length; i++)
        if (i === 0 || sorted[i] !== sorted[u - 1]) sorted[u++] = sorted[i];
      return sorted.slice(0, u);
    };
  }
  const seen = new Uint8Array(max + 1);
  const scratch = new Uint32Array(Math.min(max + 1, maxPiece));
  return (piece) => {
    let u = 0;
    for (let i = 0; i < piece.length; i++) {
      const v = piece[i];
      if (seen[v] === 0) {
        seen[v] = 1;
        scratch[u++] = v;
      }
    }
    const rows = scratch.slice(0, u).sort();
    for (let j = 0; j < u; j++) seen[rows[j]] = 0;
    return rows;
  };
}
