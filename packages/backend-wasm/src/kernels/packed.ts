/** Decoding helpers shared by the packed-weight kernels (PaletteMatMul, Bf16MatMul, Bf16GatherRows). */

/** `count` indices of `bits` bits from element `start` of a little-endian packed stream. */
export function unpackIndices(
  words: Uint32Array,
  bits: number,
  start: number,
  count: number,
  out: Uint8Array,
): void {
  const mask = (1 << bits) - 1;
  for (let i = 0, bit = start * bits; i < count; i++, bit += bits) {
    const w = bit >>> 5;
    const sh = bit & 31;
    let v = words[w] >>> sh;
    if (sh + bits > 32) v |= words[w + 1] << (32 - sh);
    out[i] = v & mask;
  }
}

/** float32 values of `count` bf16 elements from element `start` of a pair-packed table. */
export function unpackBf16(
  words: Uint32Array,
  start: number,
  count: number,
  out: Float32Array,
): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, count);
  for (let i = 0; i < count; i++) {
    const e = start + i;
    const w = words[e >>> 1];
    bits[i] = e & 1 ? w & 0xffff0000 : w << 16;
  }
}

/** A heap int32 array read as unsigned words. */
export function wordsOf(v: Int32Array): Uint32Array {
  return new Uint32Array(v.buffer, v.byteOffset, v.length);
}

/** Below this many rows of x a packed product is a direct loop; from it on W is decoded once and XNNPACK multiplies. */
export const DECODE_THEN_GEMM_ROWS = 4;
