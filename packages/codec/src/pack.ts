import { InvalidArgumentError, ShapeError, assertIntInRange, decodeIndices } from '@edkm/core';
import { LITTLE_ENDIAN, checkArrayLike, checkKind } from './check';

/*
 * Format: element i occupies bits [i·bits, (i+1)·bits) of a little-endian bit stream, least
 * significant bit first; stream bit j is bit (j mod 8) of byte ⌊j/8⌋. The last byte is padded
 * with zero bits. 32 elements fill exactly `bits` 32-bit words, so the bulk is packed word-at-a-time
 * through a 32-bit bit buffer and only the last < 32 elements go byte by byte.
 */

const MAX_N = 2 ** 53 / 8;

function checkBits(op: string, bits: number): number {
  return assertIntInRange(`${op}: bits`, bits, 1, 8);
}

/** Bytes of `n` elements packed at `bits` bits each: ⌈n·bits/8⌉. */
export function packedByteLength(n: number, bits: number): number {
  checkBits('packedByteLength', bits);
  assertIntInRange('packedByteLength: n', n, 0, MAX_N);
  return Math.ceil((n * bits) / 8);
}

function badValue(i: number, v: number, bits: number): InvalidArgumentError {
  return new InvalidArgumentError(
    `packIndices: indices[${i}] = ${v} does not fit in ${bits} bits (must be an integer in [0, ${2 ** bits}))`,
  );
}

/**
 * Packs integers in [0, 2^bits) densely, `bits` (1..8) bits each. Round-trips with unpackIndices.
 * `out` (exactly packedByteLength(n, bits) bytes, e.g. last step's) is overwritten and returned.
 */
export function packIndices(
  indices: ArrayLike<number>,
  bits: number,
  out?: Uint8Array,
): Uint8Array {
  const op = 'packIndices';
  checkBits(op, bits);
  checkArrayLike(op, 'indices', indices);
  const n = indices.length;
  const need = packedByteLength(n, bits);
  let bytes: Uint8Array;
  if (out === undefined) bytes = new Uint8Array(need);
  else {
    bytes = checkKind(op, 'out', out, ['Uint8Array']);
    if (out.length !== need) {
      throw new ShapeError(
        `${op}: out has ${out.length} bytes, expected ⌈${n}·${bits}/8⌉ = ${need}`,
      );
    }
  }
  const mask = (1 << bits) - 1;
  let i = 0;
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) {
    const blocks = Math.floor(n / 32);
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, blocks * bits);
    for (let b = 0, w = 0; b < blocks; b++) {
      let acc = 0;
      let used = 0;
      for (const end = i + 32; i < end; i++) {
        const v = indices[i];
        // (v & mask) !== v rejects negatives, fractions, NaN and values >= 2^bits in one test
        if ((v & mask) !== v) throw badValue(i, v, bits);
        acc |= v << used;
        used += bits;
        if (used >= 32) {
          words[w++] = acc;
          used -= 32;
          acc = v >>> (bits - used); // the bits that did not fit (0 when none)
        }
      }
    }
  }
  let acc = 0;
  let used = 0;
  let p = (i * bits) / 8;
  for (; i < n; i++) {
    const v = indices[i];
    if ((v & mask) !== v) throw badValue(i, v, bits);
    acc |= v << used;
    used += bits;
    if (used >= 8) {
      bytes[p++] = acc;
      acc >>>= 8;
      used -= 8;
    }
  }
  if (used > 0) bytes[p] = acc;
  return bytes;
}

/**
 * Unpacks `n` elements of `bits` bits from `bytes` (which may be longer than needed) into `out`
 * (length n; allocated when not given). Bytes at any byteOffset are accepted; a 4-byte-aligned
 * view takes the word-at-a-time path.
 */
export function unpackIndices(
  bytes: Uint8Array,
  bits: number,
  n: number,
  out?: Uint8Array,
): Uint8Array {
  const op = 'unpackIndices';
  checkBits(op, bits);
  checkKind(op, 'bytes', bytes, ['Uint8Array']);
  const need = packedByteLength(n, bits);
  if (bytes.length < need) {
    throw new ShapeError(
      `${op}: ${n} elements of ${bits} bits need ${need} bytes, got ${bytes.length}`,
    );
  }
  if (out === undefined) out = new Uint8Array(n);
  else {
    checkKind(op, 'out', out, ['Uint8Array']);
    if (out.length !== n)
      throw new ShapeError(`${op}: out has length ${out.length}, expected ${n}`);
  }
  const mask = (1 << bits) - 1;
  let i = 0;
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) {
    // whole blocks of 32 indices are `bits` whole words: the word-stream decoder of the kernels
    const blocks = Math.floor(n / 32);
    decodeIndices(
      new Uint32Array(bytes.buffer, bytes.byteOffset, blocks * bits),
      bits,
      0,
      blocks * 32,
      out,
    );
    i = blocks * 32;
  }
  let acc = 0;
  let avail = 0;
  let p = (i * bits) / 8;
  for (; i < n; i++) {
    if (avail < bits) {
      acc |= bytes[p++] << avail;
      avail += 8;
    }
    out[i] = acc & mask;
    acc >>>= bits;
    avail -= bits;
  }
  return out;
}

/** A packed index list with its length and width, for memory accounting and storage. */
export interface PackedIndices {
  bits: number;
  n: number;
  bytes: Uint8Array;
  /** bytes.byteLength = ⌈n·bits/8⌉. */
  byteSize: number;
}

/** packIndices as a self-describing object (what a palettized weight stores). */
export function toPacked(indices: ArrayLike<number>, bits: number): PackedIndices {
  const bytes = packIndices(indices, bits);
  return { bits, n: indices.length, bytes, byteSize: bytes.byteLength };
}

/** The indices of a PackedIndices, unpacked. */
export function fromPacked(p: PackedIndices, out?: Uint8Array): Uint8Array {
  return unpackIndices(p.bytes, p.bits, p.n, out);
}
