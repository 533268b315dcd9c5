import { uniquify } from '@edkm/codec';
import { type HalfDtype, fromHalfBits } from '@edkm/core';

/** Distinct points of a weight tensor: values U×d, counts, and the row of every vector. */
export interface UniquePoints {
  values: Float32Array;
  counts: Float32Array;
  rows: Int32Array;
  u: number;
}

/**
 * Uniquifies 16-bit codes grouped in vectors of d. d = 1 goes through the codec's O(N)
 * histogram (rows in ascending code order); d > 1 uses an open-addressing hash of the d codes (O(N) expected).
 */
export function uniquePoints(codes: Uint16Array, d: number, dtype: HalfDtype): UniquePoints {
  const m = codes.length / d;
  if (d === 1) {
    // the codec's O(N) histogram over the 65,536 codes: rows in ascending code order
    const q = uniquify(codes, { dtype, index: 'compact' });
    return {
      values: q.values,
      counts: Float32Array.from(q.counts),
      rows: Int32Array.from(q.indices),
      u: q.values.length,
    };
  }
  let capacity = 1;
  while (capacity < m * 2) capacity <<= 1;
  const slots = new Int32Array(capacity).fill(-1); // first vector index of each distinct point
  const slotRow = new Int32Array(capacity);
  const rows = new Int32Array(m);
  const firsts: number[] = [];
  const counts: number[] = [];
  const mask = capacity - 1;
  for (let i = 0; i < m; i++) {
    let h = 0x811c9dc5;
    for (let b = 0; b < d; b++) h = Math.imul(h ^ codes[i * d + b], 0x01000193);
    let s = (h >>> 0) & mask;
    for (;;) {
      const first = slots[s];
      if (first < 0) {
        slots[s] = i;
        slotRow[s] = firsts.length;
        rows[i] = firsts.length;
        firsts.push(i);
        counts.push(1);
        break;
      }
      let same = true;
      for (let b = 0; b < d && same; b++) same = codes[first * d + b] === codes[i * d + b];
      if (same) {
        rows[i] = slotRow[s];
        counts[slotRow[s]]++;
        break;
      }
      s = (s + 1) & mask;
    }
  }
  const u = firsts.length;
  const uniqueCodes = new Uint16Array(u * d);
  for (let r = 0; r < u; r++)
    uniqueCodes.set(codes.subarray(firsts[r] * d, firsts[r] * d + d), r * d);
  return { values: fromHalfBits(uniqueCodes, dtype), counts: Float32Array.from(counts), rows, u };
}
