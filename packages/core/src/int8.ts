import * as tf from '@tensorflow/tfjs-core';
import { DTypeError, InvalidArgumentError, ShapeError } from './errors';

/**
 * Exact int8 matrix products on the host: the reference that int8 GPU kernels (tensor-core GEMMs
 * through WebGPU's subgroup matrices) are checked against. Each product is at most 2^14 in
 * magnitude, so the sums are exact in JavaScript numbers (below 2^53) and are wrapped to int32 on
 * the way out, like an int32 accumulator (no wrap happens below K = 2^17).
 */

/** Σₖ a[i·k + t]·b[j·k + t]: row i of A (M×K) with row j of B (N×K), both row-major int8. */
export function int8DotNT(a: Int8Array, b: Int8Array, k: number, i: number, j: number): number {
  let s = 0;
  const ai = i * k;
  const bj = j * k;
  for (let t = 0; t < k; t++) s += a[ai + t] * b[bj + t];
  return s | 0;
}

/**
 * C = A·Bᵀ in int32, A M×K and B N×K row-major int8 (B is a weight matrix stored the way a
 * linear layer's is); C is M×N row-major. Four rows of B at a time so each A row is read once per
 * four outputs.
 */
export function int8MatMulNT(
  a: Int8Array,
  b: Int8Array,
  m: number,
  n: number,
  k: number,
): Int32Array {
  if (a.length !== m * k) throw new Error(`int8MatMulNT: A has ${a.length} values, not ${m}×${k}`);
  if (b.length !== n * k) throw new Error(`int8MatMulNT: B has ${b.length} values, not ${n}×${k}`);
  const c = new Int32Array(m * n);
  for (let i = 0; i < m; i++) {
    const ai = i * k;
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const b0 = j * k;
      const b1 = b0 + k;
      const b2 = b1 + k;
      const b3 = b2 + k;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let t = 0; t < k; t++) {
        const x = a[ai + t];
        s0 += x * b[b0 + t];
        s1 += x * b[b1 + t];
        s2 += x * b[b2 + t];
        s3 += x * b[b3 + t];
      }
      c[i * n + j] = s0;
      c[i * n + j + 1] = s1;
      c[i * n + j + 2] = s2;
      c[i * n + j + 3] = s3;
    }
    for (; j < n; j++) c[i * n + j] = int8DotNT(a, b, k, i, j);
  }
  return c;
}

/**
 * The int8 product as a kernel every backend plugin registers (tfjs has no int8 dtype: operands
 * are int32 tensors holding four int8 values per word, little-endian, value t of a row in byte
 * t % 4 of word ⌊t / 4⌋; `packInt8` writes them).
 *
 * Int8MatMul: inputs {a: [M, W] int32, b: [N, W] int32}, no attrs → [M, N] int32:
 *   c[i, j] = Σ_{t < 4W} int8(a, i, t) · int8(b, j, t), wrapped to int32 (exact below K = 2^17).
 * A row whose K is not a multiple of 4 is padded with zero bytes (which add nothing). On WebGPU the
 * plugin runs it on tensor cores (subgroup matrices) where the device has them and the shape fits
 * the kernel's tile, else a plain WGSL loop (packages/backend-webgpu/README.md).
 */
export const Int8KernelNames = {
  Int8MatMul: 'EdkmInt8MatMul',
  /**
   * {x: [M, K] f32}, attrs {slices: 1 | 2} → [hi: [M, W] int32, (lo: [M, W] int32,) scale: [M] f32]
   * (W = ⌈K/4⌉, packed as Int8MatMul reads them): scale = max|x_row| / 127, hi = round(x / scale)
   * (W8A8's per-token quantization); with slices 2 also lo = round((x / scale − hi) · 256), so that
   * x ≈ scale · (hi + lo / 256) to about 2^−16 of the row's largest value (the split-precision
   * product's operands). Rounding to nearest even, both slices clamped to ±127; a row of zeros has
   * scale 0. attrs padRows, padK (Int8Padding): hi and lo [⌈M/padRows⌉·padRows, ⌈K/padK⌉·padK/4],
   * the padding zeros. See int8-linear.ts.
   */
  Int8QuantizeRows: 'EdkmInt8QuantizeRows',
  /**
   * {c: [M, N] int32, sa: [M] f32, sb: [N] f32, (c2: [M, N] int32, (c3: [M, N] int32,))
   * (residual: [M, N] f32)}, attrs {lo: the weight of c2 + c3 (0: neither), residual: boolean}
   * → [M, N] f32: y = (sa[m] · sb[n]) · (c + lo · (c2 + c3)) (+ residual): an int8 product's
   * rescale (c2 + c3 summed in int32). c, c2, c3 may be padded (more rows and columns than sa and
   * sb): y is their top-left M×N corner.
   */
  Int8Rescale: 'EdkmInt8Rescale',
  /**
   * A palettized weight as int8 rows (see LinearKernelNames.PaletteMatMul for the inputs):
   * {codes, lut, rows, scales}, attrs {bits, clusterDim, k, padRows, padK} → [b: [N', W'] int32,
   * sb: [N] f32] (N', W' padded as Int8QuantizeRows pads), in output row order: sb[o] = max|row o|
   * / 127 (from its LUT's entries and scale), b = round(W / sb).
   */
  PaletteInt8: 'EdkmPaletteInt8',
} as const;

/** Writes int8 value v as element t of row r of packed rows of `words` words (into zeros). */
export function setPackedInt8(
  out: Int32Array,
  words: number,
  r: number,
  t: number,
  v: number,
): void {
  out[r * words + (t >> 2)] |= (v & 0xff) << (8 * (t & 3));
}

/** Int8 values (rows × k, row-major, each in −128…127) packed four to an int32 word, rows padded to whole words with zeros. */
export function packInt8(values: ArrayLike<number>, rows: number, k: number): Int32Array {
  if (values.length !== rows * k)
    throw new ShapeError(`packInt8: ${values.length} values are not ${rows}×${k}`);
  const words = Math.ceil(k / 4);
  const out = new Int32Array(rows * words);
  for (let r = 0; r < rows; r++)
    for (let t = 0; t < k; t++) {
      const v = values[r * k + t];
      if (!(Number.isInteger(v) && v >= -128 && v <= 127))
        throw new InvalidArgumentError(`packInt8: value ${v} at [${r}, ${t}] is not an int8`);
      setPackedInt8(out, words, r, t, v);
    }
  return out;
}

/** The int8 values of packed rows (rows × 4·words), the inverse of packInt8 (padding included). */
export function unpackInt8(words: Int32Array): Int8Array {
  const out = new Int8Array(words.length * 4);
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    out[4 * i] = w;
    out[4 * i + 1] = w >> 8;
    out[4 * i + 2] = w >> 16;
    out[4 * i + 3] = w >> 24;
  }
  return out;
}

/** Int8MatMul on the host from packed operands (A M×W, B N×W words): the kernels' reference. */
export function int8MatMulPacked(
  a: Int32Array,
  b: Int32Array,
  m: number,
  n: number,
  words: number,
): Int32Array {
  if (a.length !== m * words || b.length !== n * words)
    throw new ShapeError(
      `int8MatMulPacked: A has ${a.length} words and B ${b.length}, not ${m}×${words} and ${n}×${words}`,
    );
  return int8MatMulNT(unpackInt8(a), unpackInt8(b), m, n, 4 * words);
}

/** An int32 tensor [rows, ⌈k/4⌉] of packed int8 values, for int8MatMul. */
export function int8Tensor(values: ArrayLike<number>, rows: number, k: number): tf.Tensor2D {
  return tf.tensor2d(packInt8(values, rows, k), [rows, Math.ceil(k / 4)], 'int32');
}

/**
 * C = A·Bᵀ in int32 from packed int8 operands (see Int8KernelNames): a [M, W] and b [N, W] int32
 * tensors of four int8 values a word (`int8Tensor`), c [M, N] int32, exact. Runs the backend's
 * EdkmInt8MatMul; not differentiable.
 */
export function int8MatMul(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (a.rank !== 2 || b.rank !== 2)
    throw new ShapeError(`int8MatMul: a and b must be 2-D, got [${a.shape}], [${b.shape}]`);
  if (a.shape[1] !== b.shape[1])
    throw new ShapeError(
      `int8MatMul: a [${a.shape}] and b [${b.shape}] have different row widths (words of 4 int8)`,
    );
  if (a.dtype !== 'int32' || b.dtype !== 'int32')
    throw new DTypeError('int8MatMul: a and b must be int32 tensors of packed int8 (int8Tensor)');
  return tf.engine().runKernel(Int8KernelNames.Int8MatMul, { a, b }, {}) as tf.Tensor2D;
}
