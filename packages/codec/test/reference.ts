import { type HalfDtype, f32ToBf16Bits, f32ToF16Bits, halfValueTable } from '@edkm/core';

/** Naive uniquify: a Map over the codes of every element, then a sort of the distinct codes. */
export function naiveUniquify(values: Float32Array | Uint16Array, dtype: HalfDtype) {
  const toCode = dtype === 'bf16' ? f32ToBf16Bits : f32ToF16Bits;
  const codes = Array.from(values, (v) => (values instanceof Uint16Array ? v : toCode(v)));
  const counts = new Map<number, number>();
  for (const c of codes) counts.set(c, (counts.get(c) ?? 0) + 1);
  const unique = [...counts.keys()].sort((a, b) => a - b);
  const rowOf = new Map(unique.map((c, r) => [c, r]));
  const table = halfValueTable(dtype);
  return {
    codes,
    uniqueCodes: unique,
    values: unique.map((c) => table[c]),
    counts: unique.map((c) => counts.get(c)!),
    rows: codes.map((c) => rowOf.get(c)!),
  };
}

/** Naive packer: one bit at a time, LSB-first little-endian bit stream. */
export function naivePack(indices: ArrayLike<number>, bits: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((indices.length * bits) / 8));
  for (let i = 0; i < indices.length; i++) {
    for (let b = 0; b < bits; b++) {
      const pos = i * bits + b;
      if ((indices[i] >> b) & 1) out[pos >> 3] |= 1 << (pos & 7);
    }
  }
  return out;
}

/** Bit patterns of a float array, to compare −0/+0 and NaN payloads exactly. */
export const bitsOf = (a: Float32Array): number[] =>
  Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

export const isNaNCode = (c: number, dtype: HalfDtype): boolean =>
  (c & 0x7fff) > (dtype === 'bf16' ? 0x7f80 : 0x7c00);

/** Index of the first differing element (or length difference), -1 when equal. */
export function firstMismatch(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}
