import * as tf from '@tensorflow/tfjs-core';
import { rmsNormRows, siluMul } from './decode';
import { DTypeError, InvalidArgumentError, ShapeError } from './errors';
import { Int8KernelNames, int8MatMul, setPackedInt8 } from './int8';
import {
  type LinearFusionInputs,
  type PackedWeight,
  type PaletteWeightHost,
  packedIndexAt,
  packedMatMul,
} from './linear';

/**
 * Linear products on int8 tensor cores, composed from four kernels every plugin registers
 * (Int8KernelNames): Int8QuantizeRows (float rows → int8 rows and a scale each), PaletteInt8 (a
 * palettized weight → int8 rows and a scale each, for the one product that needs them), Int8MatMul
 * (int8 × int8 → int32, exact) and Int8Rescale (int32 → float32 with both scales). Two uses:
 *  - W8A8 (`packedMatMulW8A8`): a palettized model's prefill, activations quantized per token;
 *  - split precision (`splitMatMul`): each float operand as two int8 slices with a shared scale
 *    per row (to ~2^−16 of the row's largest value), three int8 products summed in float32.
 * The host references below define the kernels' results; the cpu and wasm plugins run them.
 */

/** Rounds to the nearest integer, ties to even (WGSL's round()). */
export function roundEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface QuantizedRows {
  /** Packed int8 rows [M, ⌈K/4⌉] (packInt8's layout). */
  hi: Int32Array;
  /** slices 2: the low slice, same layout. */
  lo?: Int32Array;
  /** Per row: x ≈ scale · (hi + lo / 256). */
  scale: Float32Array;
}

/**
 * Zero rows and columns that int8 operands are padded with, so that a tensor-core kernel's whole
 * tiles cover them: rows to a multiple of `rows`, K to a multiple of `k` bytes (a multiple of 4).
 * Padding adds nothing to the products; Int8Rescale reads only the real M×N corner.
 */
export interface Int8Padding {
  rows: number;
  k: number;
}
/** No padding: rows as they are, K to whole 32-bit words. */
export const INT8_UNPADDED: Int8Padding = { rows: 1, k: 4 };
/**
 * What the WebGPU plugin's tensor-core kernels need (128×128 tiles, K in 128-byte slices for the
 * default GEMM, 64 for the fused split kernel): W8A8 and the split product pad to it on every
 * backend (at most 127 zero rows and 127 zero bytes a row).
 */
export const INT8_TENSOR_CORE_PADDING: Int8Padding = { rows: 128, k: 128 };

/** The packed shape [rows, words] of m rows of k int8 values under a padding. */
export function int8PackedShape(
  m: number,
  k: number,
  pad: Int8Padding = INT8_UNPADDED,
): [number, number] {
  if (
    !(
      Number.isInteger(pad.rows) &&
      pad.rows >= 1 &&
      Number.isInteger(pad.k) &&
      pad.k >= 4 &&
      pad.k % 4 === 0
    )
  )
    throw new InvalidArgumentError(
      `int8 padding: rows ≥ 1 and k a multiple of 4, got ${JSON.stringify(pad)}`,
    );
  return [Math.ceil(m / pad.rows) * pad.rows, (Math.ceil(k / pad.k) * pad.k) / 4];
}

/** Int8QuantizeRows on the host (the kernel's definition; see Int8KernelNames). */
export function quantizeRowsHost(
  x: Float32Array,
  m: number,
  k: number,
  slices: 1 | 2,
  pad: Int8Padding = INT8_UNPADDED,
): QuantizedRows {
  if (x.length !== m * k) throw new ShapeError(`quantizeRows: ${x.length} values for ${m}×${k}`);
  const [rows, words] = int8PackedShape(m, k, pad);
  const hi = new Int32Array(rows * words);
  const lo = slices === 2 ? new Int32Array(rows * words) : undefined;
  const scale = new Float32Array(m);
  for (let r = 0; r < m; r++) {
    let amax = 0;
    for (let t = 0; t < k; t++) amax = Math.max(amax, Math.abs(x[r * k + t]));
    if (!(amax > 0)) continue; // zeros (and a NaN row: scale 0, values 0)
    scale[r] = Math.fround(amax / 127);
    const inv = Math.fround(127 / amax);
    for (let t = 0; t < k; t++) {
      const v = Math.fround(x[r * k + t] * inv);
      const h = clamp127(roundEven(v));
      setPackedInt8(hi, words, r, t, h);
      // v − h and its product by 256 are exact in float32
      if (lo) setPackedInt8(lo, words, r, t, clamp127(roundEven(Math.fround((v - h) * 256))));
    }
  }
  return lo ? { hi, lo, scale } : { hi, scale };
}

const clamp127 = (q: number) => Math.max(-127, Math.min(127, q));

/**
 * Int8Rescale on the host: (sa[m] · sb[n]) · (c + lo · (c2 + c3)) (+ residual), in float32 steps;
 * c (and c2, c3) may be padded: rows of `cols` ≥ N values (default N), M of them read.
 */
export function int8RescaleHost(
  c: Int32Array,
  sa: Float32Array,
  sb: Float32Array,
  opts: {
    c2?: Int32Array;
    c3?: Int32Array;
    lo?: number;
    residual?: Float32Array;
    cols?: number;
  } = {},
): Float32Array {
  const m = sa.length;
  const n = sb.length;
  const cols = opts.cols ?? n;
  const y = new Float32Array(m * n);
  const lo = Math.fround(opts.lo ?? 0);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      const at = i * cols + j;
      let v = Math.fround(c[at]);
      if (opts.c2) {
        const c23 = opts.c3 ? (opts.c2[at] + opts.c3[at]) | 0 : opts.c2[at];
        v = Math.fround(v + Math.fround(Math.fround(c23) * lo));
      }
      v = Math.fround(Math.fround(sa[i] * sb[j]) * v);
      y[i * n + j] = opts.residual ? Math.fround(v + opts.residual[i * n + j]) : v;
    }
  return y;
}

/** PaletteInt8 on the host: the weight's int8 rows in output order and their scales. */
export function paletteInt8Host(
  h: PaletteWeightHost,
  pad: Int8Padding = INT8_UNPADDED,
): { b: Int32Array; sb: Float32Array } {
  const [n, k] = h.shape;
  const d = h.clusterDim;
  const size = 2 ** h.bits;
  const [rows, words] = int8PackedShape(n, k, pad);
  const b = new Int32Array(rows * words);
  const sb = new Float32Array(n);
  for (let s = 0; s < n; s++) {
    const base = h.rowGroup[s] * size * d;
    const o = h.rowOut[s];
    const w = (j: number) => Math.fround(h.scales[s] * h.lut[base + j]);
    let amax = 0;
    for (let j = 0; j < size * d; j++) amax = Math.max(amax, Math.abs(w(j)));
    if (!(amax > 0)) continue;
    sb[o] = Math.fround(amax / 127);
    const inv = Math.fround(127 / amax);
    for (let v = 0; v < k / d; v++) {
      const idx = packedIndexAt(h.codes, h.bits, s * (k / d) + v);
      for (let e = 0; e < d; e++) {
        setPackedInt8(
          b,
          words,
          o,
          v * d + e,
          clamp127(roundEven(Math.fround(w(idx * d + e) * inv))),
        );
      }
    }
  }
  return { b, sb };
}

function checkFloat2D(op: string, x: tf.Tensor): void {
  if (x.rank !== 2) throw new ShapeError(`${op}: x must be 2-D [M, K], got [${x.shape}]`);
  if (x.dtype !== 'float32') throw new DTypeError(`${op}: x must be float32, got ${x.dtype}`);
}

/** Int8QuantizeRows: x [M, K] → packed int8 rows and a scale per row (see Int8KernelNames). */
export function quantizeRowsInt8(
  x: tf.Tensor2D,
  slices: 1 | 2 = 1,
  pad: Int8Padding = INT8_UNPADDED,
): { hi: tf.Tensor2D; lo?: tf.Tensor2D; scale: tf.Tensor1D } {
  checkFloat2D('quantizeRowsInt8', x);
  if (slices !== 1 && slices !== 2)
    throw new InvalidArgumentError(`quantizeRowsInt8: slices must be 1 or 2, got ${slices}`);
  int8PackedShape(x.shape[0], x.shape[1], pad);
  const out = tf.engine().runKernel(Int8KernelNames.Int8QuantizeRows, { x }, {
    slices,
    padRows: pad.rows,
    padK: pad.k,
  } as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
  return slices === 2
    ? { hi: out[0] as tf.Tensor2D, lo: out[1] as tf.Tensor2D, scale: out[2] as tf.Tensor1D }
    : { hi: out[0] as tf.Tensor2D, scale: out[1] as tf.Tensor1D };
}

/** Int8Rescale: (sa[m] · sb[n]) · (c + lo · (c2 + c3)) (+ residual) → float32 [M, N]. */
export function int8Rescale(
  c: tf.Tensor2D,
  sa: tf.Tensor1D,
  sb: tf.Tensor1D,
  opts: { c2?: tf.Tensor2D; c3?: tf.Tensor2D; lo?: number; residual?: tf.Tensor2D } = {},
): tf.Tensor2D {
  const [m, n] = [sa.shape[0], sb.shape[0]];
  if ([c, opts.c2, opts.c3].some((t) => t && t.dtype !== 'int32'))
    throw new DTypeError('int8Rescale: c, c2 and c3 must be int32 (int8MatMul products)');
  if (opts.c3 && !opts.c2) throw new InvalidArgumentError('int8Rescale: c3 comes with c2');
  if (c.rank !== 2 || m > c.shape[0] || n > c.shape[1])
    throw new ShapeError(`int8Rescale: scales [${sa.shape}] and [${sb.shape}] for c [${c.shape}]`);
  for (const [name, t] of [
    ['c2', opts.c2],
    ['c3', opts.c3],
  ] as const)
    if (t && (t.shape[0] !== c.shape[0] || t.shape[1] !== c.shape[1]))
      throw new ShapeError(`int8Rescale: ${name} [${t.shape}] is not c's [${c.shape}]`);
  if (opts.residual && (opts.residual.shape[0] !== m || opts.residual.shape[1] !== n))
    throw new ShapeError(`int8Rescale: the residual [${opts.residual.shape}] is not [${m}, ${n}]`);
  if (opts.c2 && !(Number.isFinite(opts.lo) && (opts.lo as number) !== 0))
    throw new InvalidArgumentError('int8Rescale: c2 needs a finite, nonzero weight `lo`');
  const inputs: Record<string, tf.Tensor> = { c, sa, sb };
  if (opts.c2) inputs.c2 = opts.c2;
  if (opts.c3) inputs.c3 = opts.c3;
  if (opts.residual) inputs.residual = opts.residual;
  return tf.engine().runKernel(Int8KernelNames.Int8Rescale, inputs, {
    lo: opts.c2 ? (opts.lo as number) : 0,
    residual: opts.residual !== undefined,
  } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

/** PaletteInt8: a palettized weight's int8 rows [N, ⌈K/4⌉] in output order and their scales [N]. */
export function paletteInt8(
  w: PackedWeight,
  pad: Int8Padding = INT8_UNPADDED,
): { b: tf.Tensor2D; sb: tf.Tensor1D } {
  if (w.format !== 'palette')
    throw new InvalidArgumentError(`paletteInt8: the weight must be palettized, got ${w.format}`);
  int8PackedShape(w.shape[0], w.shape[1], pad);
  const out = tf
    .engine()
    .runKernel(
      Int8KernelNames.PaletteInt8,
      { codes: w.codes, lut: w.lut, rows: w.rows, scales: w.scales },
      {
        bits: w.bits,
        clusterDim: w.clusterDim,
        k: w.shape[1],
        padRows: pad.rows,
        padK: pad.k,
      } as unknown as tf.NamedAttrMap,
    ) as unknown as tf.Tensor[];
  return { b: out[0] as tf.Tensor2D, sb: out[1] as tf.Tensor1D };
}

/**
 * y = x · Wᵀ for a palettized W on int8 tensor cores (W8A8): x's rows (after the fused
 * prologue) quantized per token, W's rows per output channel (PaletteInt8: the int8 copy exists
 * only during this call), the int32 product rescaled (and the residual added). Other weight
 * formats take the exact packedMatMul. Not differentiable (inference).
 */
export function packedMatMulW8A8(
  x: tf.Tensor2D,
  w: PackedWeight,
  fuse: LinearFusionInputs = {},
): tf.Tensor2D {
  if (w.format !== 'palette') return packedMatMul(x, w, fuse);
  const op = 'packedMatMulW8A8';
  checkFloat2D(op, x);
  const k = w.shape[1];
  if (fuse.swiglu && fuse.rmsNorm)
    throw new InvalidArgumentError(`${op}: the rmsNorm and swiglu prologues exclude each other`);
  if (x.shape[1] !== (fuse.swiglu ? 2 * k : k))
    throw new ShapeError(`${op}: x [${x.shape}] does not fit the weight [${w.shape}]`);
  return tf.tidy(() => {
    const xp = fuse.rmsNorm
      ? rmsNormRows(x, fuse.rmsNorm.weight, fuse.rmsNorm.eps)
      : fuse.swiglu
        ? siluMul(x)
        : x;
    const a = quantizeRowsInt8(xp, 1, INT8_TENSOR_CORE_PADDING);
    const { b, sb } = paletteInt8(w, INT8_TENSOR_CORE_PADDING);
    const c = int8MatMul(a.hi, b);
    return int8Rescale(c, a.scale, sb, fuse.residual ? { residual: fuse.residual } : {});
  });
}

/**
 * C = A·Bᵀ (A [M, K], B [N, K] float32) from int8 products: each row split as
 * scale · (hi + lo / 256) (Int8QuantizeRows, slices 2: to ~2^−16 of the row's largest value,
 * where bf16 keeps 2^−9 of each value), then
 * C = sa · sb · (hi_a·hi_bᵀ + (hi_a·lo_bᵀ + lo_a·hi_bᵀ) / 256): three int8 products (lo·lo,
 * 2^−16 of the rest, is left out) and one rescale. Not differentiable.
 */
export function splitMatMul(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  checkFloat2D('splitMatMul', a);
  checkFloat2D('splitMatMul', b);
  if (a.shape[1] !== b.shape[1])
    throw new ShapeError(`splitMatMul: A [${a.shape}] and B [${b.shape}] differ in K`);
  return tf.tidy(() => {
    const qa = quantizeRowsInt8(a, 2, INT8_TENSOR_CORE_PADDING);
    const qb = quantizeRowsInt8(b, 2, INT8_TENSOR_CORE_PADDING);
    // (three products, not two over concatenated slices: tfjs-webgpu's concat of int32 goes
    // through float32 and rounds packed words above 2^24)
    return int8Rescale(int8MatMul(qa.hi, qb.hi), qa.scale, qb.scale, {
      c2: int8MatMul(qa.hi, qb.lo as tf.Tensor2D),
      c3: int8MatMul(qa.lo as tf.Tensor2D, qb.hi),
      lo: 1 / 256,
    });
  });
}

/** A PaletteWeightHost over a PaletteMatMul/PaletteInt8 kernel's input arrays (no copies). */
export function paletteHostOf(
  codes: Int32Array,
  lut: Float32Array,
  rows: Int32Array,
  scales: Float32Array,
  attrs: { bits: number; clusterDim: number; k: number },
): PaletteWeightHost {
  const n = scales.length;
  const rowOut = new Int32Array(n);
  const rowGroup = new Int32Array(n);
  for (let s = 0; s < n; s++) {
    rowOut[s] = rows[2 * s];
    rowGroup[s] = rows[2 * s + 1];
  }
  return {
    shape: [n, attrs.k],
    bits: attrs.bits,
    clusterDim: attrs.clusterDim,
    codes: new Uint32Array(codes.buffer, codes.byteOffset, codes.length),
    lut,
    rowOut,
    rowGroup,
    scales,
  };
}
