import * as tf from '@tensorflow/tfjs-core';
import { decodeReference, rmsNormRows, siluMul } from './decode';
import { DTypeError, InvalidArgumentError, ShapeError } from './errors';
import { fromHalfBits } from './half';

/**
 * Linear layers read straight from their stored form, for inference: y = x · Wᵀ where W [N, K] is
 * either palettized (n-bit LUT indices, packed as the export packs them) or 16-bit (bf16, two per
 * 32-bit word: WebGPU drivers without `shader-f16` read them as u32). No dense float32 copy of W
 * exists. The same kernels serve decoding (M = batch rows, a GEMV) and prefill (M = tokens).
 */
export const LinearKernelNames = {
  /**
   * {x: [M, K] f32, codes: [W] int32, lut: [G·2^bits·d] f32, rows: [N, 2] int32, scales: [N] f32},
   * attrs {bits, clusterDim: d} → [M, N]. `codes` is the little-endian bit stream of every stored
   * row's K/d indices (stored row s, vector v is element s·K/d + v at `bits` bits, as
   * packIndices packs them) read as 32-bit words; rows[s] = (output row of stored row s, its LUT
   * group); y[m, rows[s, 0]] = scales[s] · Σ_v Σ_e x[m, v·d + e] · lut[group, idx(s, v), e].
   * With the LinearFusion attrs, also {g: [K]} (prologue rmsnorm) and {residual: [M, N]}.
   */
  PaletteMatMul: 'EdkmPaletteMatMul',
  /** {x: [M, K] f32, w: [⌈N·K/2⌉] int32}, attrs {n} → [M, N]: W's bf16 bits, element i in half i mod 2 of word ⌊i/2⌋ (low half first). LinearFusion as PaletteMatMul. */
  Bf16MatMul: 'EdkmBf16MatMul',
  /** {table: [⌈U·K/2⌉] int32 (bf16 pairs as Bf16MatMul), ids: [N] int32}, attrs {k, u} (U rows) → [N, K] f32; out-of-range ids give zero rows. */
  Bf16GatherRows: 'EdkmBf16GatherRows',
} as const;

/**
 * What a linear kernel may do around its product, to save a decode step's separate kernels:
 * `prologue` 'rmsnorm' multiplies by the row's inverse RMS and the weight g first
 * (x / √(mean(x²) + eps) · g, as DecodeKernelNames.RmsNorm); `residual` adds {residual: [M, N]}
 * to y; `prologue` 'swiglu' takes x [M, 2K] (a stacked gate/up product) and multiplies
 * silu(gate) · up (DecodeKernelNames.SiluMul) — kernels that hold x once per workgroup (the GPU's
 * one-row GEMV) compute it on the fly; the others run SiluMul first.
 */
export interface LinearFusion {
  prologue?: 'rmsnorm' | 'swiglu';
  /** rmsnorm's epsilon. */
  eps?: number;
  residual?: boolean;
}

export interface PaletteMatMulAttrs extends LinearFusion {
  bits: number;
  clusterDim: number;
}

export interface Bf16MatMulAttrs extends LinearFusion {
  n: number;
}

/** The fused steps of one packedMatMul call (see LinearFusion). */
export interface LinearFusionInputs {
  /** RMSNorm of x's rows with this weight first (x [M, K]). */
  rmsNorm?: { weight: tf.Tensor1D; eps: number };
  /** x is [M, 2K], gate then up: the product takes silu(gate) · up (not with rmsNorm). */
  swiglu?: boolean;
  /** Added to the product [M, N]. */
  residual?: tf.Tensor2D;
}

/**
 * A LinearFusion for kernels that compute on the host (cpu, wasm plugins): x [M, k] after the
 * prologue, computed as the separate RmsNorm kernel of the cpu plugin computes it (so fused and
 * unfused agree bit for bit there), and `finish(y, residual)`, which adds the residual in place.
 */
export function hostLinearFusion(
  x: Float32Array,
  k: number,
  attrs: LinearFusion,
  g?: Float32Array,
): {
  x: Float32Array;
  /** The product's K: x's row length `k`, half of it under the SwiGLU prologue. */
  width: number;
  finish(y: Float32Array, residual?: Float32Array): Float32Array;
} {
  const swiglu = attrs.prologue === 'swiglu';
  return {
    x:
      attrs.prologue === 'rmsnorm'
        ? decodeReference.rmsNorm(x, k, g as Float32Array, attrs.eps as number)
        : swiglu
          ? decodeReference.siluMul(x, x.length / k)
          : x,
    width: swiglu ? k / 2 : k,
    finish(y, residual) {
      if (attrs.residual && residual)
        for (let i = 0; i < y.length; i++) y[i] = Math.fround(y[i] + residual[i]);
      return y;
    },
  };
}

/** A palettized weight in host memory, in the form the PaletteMatMul kernel reads. */
export interface PaletteWeightHost {
  /** [N, K] of the dense weight it stands for (original row order). */
  shape: [number, number];
  bits: number;
  clusterDim: number;
  /** The packed index stream as 32-bit words (little-endian; at least ⌈N·K/d·bits/32⌉). */
  codes: Uint32Array;
  /** LUTs [G, 2^bits, d] as float32. */
  lut: Float32Array;
  /** Per stored row: the output row it holds (JLCM's permutation; identity without one). */
  rowOut: Int32Array;
  /** Per stored row: its LUT group. */
  rowGroup: Int32Array;
  /** Per stored row scale (ones without per-channel scales). */
  scales: Float32Array;
}

/** Parts of a palettized weight as an export stores them (see @edkm/codec's PaletteTensor). */
export interface PaletteParts {
  shape: [number, number];
  bits: number;
  clusterDim: number;
  /** The export's packed indices (bytes of the little-endian bit stream). */
  packed: Uint8Array;
  /** fp16 bits (Uint16Array) or float32 values of the LUTs [G, 2^bits, d]. */
  lut: Uint16Array | Float32Array;
  /** Stored rows per LUT, in stored order (sums to N). */
  groupRows: number[];
  scales?: Float32Array;
  permutation?: Int32Array;
}

function checkPaletteShape(op: string, shape: [number, number], bits: number, d: number): void {
  const [n, k] = shape;
  if (!Number.isInteger(n) || !Number.isInteger(k) || n < 1 || k < 1)
    throw new ShapeError(`${op}: shape [${shape}] is not a matrix`);
  if (!Number.isInteger(bits) || bits < 1 || bits > 8)
    throw new InvalidArgumentError(`${op}: bits must be an integer in 1..8, got ${bits}`);
  if (!Number.isInteger(d) || d < 1 || k % d !== 0)
    throw new ShapeError(`${op}: clusterDim ${d} does not divide the ${k} columns`);
}

/** The kernel's host form of a palettized weight (the packed stream is copied, never unpacked). */
export function paletteWeightHost(p: PaletteParts): PaletteWeightHost {
  const op = 'paletteWeightHost';
  checkPaletteShape(op, p.shape, p.bits, p.clusterDim);
  const [n, k] = p.shape;
  const streamBits = n * (k / p.clusterDim) * p.bits;
  const need = Math.ceil(streamBits / 8);
  if (p.packed.length < need)
    throw new ShapeError(`${op}: ${p.packed.length} packed bytes, need ${need}`);
  const codes = new Uint32Array(Math.max(1, Math.ceil(streamBits / 32)));
  new Uint8Array(codes.buffer).set(p.packed.subarray(0, need));
  const groups = p.groupRows;
  if (groups.reduce((a, b) => a + b, 0) !== n)
    throw new ShapeError(`${op}: group rows [${groups}] do not sum to ${n}`);
  const lutSize = groups.length * 2 ** p.bits * p.clusterDim;
  if (p.lut.length !== lutSize)
    throw new ShapeError(`${op}: LUT has ${p.lut.length} entries, expected ${lutSize}`);
  const lut =
    p.lut instanceof Float32Array ? Float32Array.from(p.lut) : fromHalfBits(p.lut, 'fp16');
  const rowGroup = new Int32Array(n);
  let s = 0;
  groups.forEach((count, g) => {
    rowGroup.fill(g, s, s + count);
    s += count;
  });
  const rowOut = p.permutation ? Int32Array.from(p.permutation) : Int32Array.from(rowGroup.keys());
  if (rowOut.length !== n)
    throw new ShapeError(`${op}: permutation of ${rowOut.length} for ${n} rows`);
  const scales = p.scales ? Float32Array.from(p.scales) : new Float32Array(n).fill(1);
  if (scales.length !== n) throw new ShapeError(`${op}: ${scales.length} scales for ${n} rows`);
  return {
    shape: [n, k],
    bits: p.bits,
    clusterDim: p.clusterDim,
    codes,
    lut,
    rowOut,
    rowGroup,
    scales,
  };
}

/**
 * The `count` indices from element `start` of a packed stream into out[0..count): 32 at a time
 * from `bits` whole words when the start is word-aligned (every row of a K that is a multiple of
 * 32), else index by index.
 */
export function decodeIndices(
  codes: Uint32Array,
  bits: number,
  start: number,
  count: number,
  out: Uint8Array,
): void {
  const mask = (1 << bits) - 1;
  let i = 0;
  const bit = start * bits;
  if ((bit & 31) === 0) {
    let w = bit >>> 5;
    const blocks = count >>> 5;
    for (let b = 0; b < blocks; b++) {
      let acc = 0;
      let avail = 0;
      for (const end = i + 32; i < end; i++) {
        if (avail >= bits) {
          out[i] = acc & mask;
          acc >>>= bits;
          avail -= bits;
        } else {
          const next = codes[w++];
          out[i] = (acc | (next << avail)) & mask;
          acc = next >>> (bits - avail);
          avail += 32 - bits;
        }
      }
    }
  }
  for (; i < count; i++) out[i] = packedIndexAt(codes, bits, start + i);
}

/** Index `i` of a packed stream read as 32-bit words. */
export function packedIndexAt(codes: Uint32Array, bits: number, i: number): number {
  const bit = i * bits;
  const w = bit >>> 5;
  const sh = bit & 31;
  let v = codes[w] >>> sh;
  if (sh + bits > 32) v |= codes[w + 1] << (32 - sh);
  return v & ((1 << bits) - 1);
}

/**
 * Several palettized weights with the same K, bits and clusterDim as one (rows stacked in order,
 * LUT groups renumbered): q, k and v — or gate and up — become one kernel call.
 */
export function stackPaletteWeights(parts: PaletteWeightHost[]): PaletteWeightHost {
  if (parts.length === 0) throw new InvalidArgumentError('stackPaletteWeights: nothing to stack');
  const { bits, clusterDim } = parts[0];
  const k = parts[0].shape[1];
  for (const p of parts)
    if (p.bits !== bits || p.clusterDim !== clusterDim || p.shape[1] !== k)
      throw new ShapeError('stackPaletteWeights: every part needs the same K, bits and clusterDim');
  const v = k / clusterDim;
  const n = parts.reduce((a, p) => a + p.shape[0], 0);
  const totalBits = n * v * bits;
  const codes = new Uint32Array(Math.max(1, Math.ceil(totalBits / 32)));
  const lut = new Float32Array(parts.reduce((a, p) => a + p.lut.length, 0));
  const rowOut = new Int32Array(n);
  const rowGroup = new Int32Array(n);
  const scales = new Float32Array(n);
  let row = 0;
  let element = 0;
  let lutAt = 0;
  let groupAt = 0;
  for (const p of parts) {
    const count = p.shape[0] * v;
    if ((element * bits) % 32 === 0) {
      // word-aligned start: copy the words (the tail's spare bits are zero in a packed stream)
      const words = Math.ceil((count * bits) / 32);
      codes.set(p.codes.subarray(0, words), (element * bits) / 32);
    } else {
      for (let i = 0; i < count; i++) {
        const value = packedIndexAt(p.codes, bits, i);
        const bit = (element + i) * bits;
        const w = bit >>> 5;
        const sh = bit & 31;
        codes[w] |= value << sh;
        if (sh + bits > 32) codes[w + 1] |= value >>> (32 - sh);
      }
    }
    lut.set(p.lut, lutAt);
    const groups = p.lut.length / (2 ** bits * clusterDim);
    for (let s = 0; s < p.shape[0]; s++) {
      rowOut[row + s] = p.rowOut[s] + row;
      rowGroup[row + s] = p.rowGroup[s] + groupAt;
    }
    scales.set(p.scales, row);
    row += p.shape[0];
    element += count;
    lutAt += p.lut.length;
    groupAt += groups;
  }
  return { shape: [n, k], bits, clusterDim, codes, lut, rowOut, rowGroup, scales };
}

/** Two bf16 values per 32-bit word (element i in the low half of word ⌊i/2⌋ when i is even). */
export function packBf16Pairs(bits: Uint16Array): Int32Array {
  const out = new Int32Array(Math.max(1, Math.ceil(bits.length / 2)));
  new Uint16Array(out.buffer).set(bits);
  return out;
}

/** The float32 values of `count` bf16 elements from element `start` of packBf16Pairs' words. */
export function decodeBf16Pairs(
  words: Uint32Array,
  start: number,
  count: number,
  out: Float32Array,
): void {
  decodeBf16Bits(words, start, count, new Uint32Array(out.buffer, out.byteOffset, count));
}

/** decodeBf16Pairs into the bits of the float32 output (a Uint32Array view of it). */
function decodeBf16Bits(
  words: Uint32Array,
  start: number,
  count: number,
  bitsOut: Uint32Array,
): void {
  let i = 0;
  if ((start & 1) === 1 && count > 0) bitsOut[i++] = words[start >>> 1] & 0xffff0000;
  // from an even element on: two per word, no branch
  for (let w = (start + i) >>> 1; i + 1 < count; i += 2, w++) {
    const v = words[w];
    bitsOut[i] = v << 16;
    bitsOut[i + 1] = v & 0xffff0000;
  }
  if (i < count) bitsOut[i] = words[(start + i) >>> 1] << 16;
}

let gemvRow = new Float32Array(0);
let gemvRowBits = new Uint32Array(0);

/**
 * y[i, r] = Σⱼ x[i, j] · W[r, j] for i < m, W [N, K] stored as bf16 pairs (two to a 32-bit word,
 * row-major): each row decoded once into a reused scratch row (decodeBf16Pairs' loop, without a
 * view per row) and dotted with every row of x, four partial sums at a time.
 */
export function bf16Gemv(
  words: Uint32Array,
  x: Float32Array,
  m: number,
  n: number,
  k: number,
  y: Float32Array,
): void {
  if (gemvRow.length < k) {
    gemvRow = new Float32Array(k);
    gemvRowBits = new Uint32Array(gemvRow.buffer);
  }
  const row = gemvRow;
  const bits = gemvRowBits;
  for (let r = 0; r < n; r++) {
    decodeBf16Bits(words, r * k, k, bits);
    for (let i = 0; i < m; i++) {
      const xo = i * k;
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      let j = 0;
      for (; j + 3 < k; j += 4) {
        a0 += x[xo + j] * row[j];
        a1 += x[xo + j + 1] * row[j + 1];
        a2 += x[xo + j + 2] * row[j + 2];
        a3 += x[xo + j + 3] * row[j + 3];
      }
      for (; j < k; j++) a0 += x[xo + j] * row[j];
      y[i * n + r] = a0 + a1 + a2 + a3;
    }
  }
}

/** A linear weight [N, K] on the active backend, in the form the inference kernels read. */
export type PackedWeight =
  | {
      format: 'palette';
      shape: [number, number];
      bits: number;
      clusterDim: number;
      codes: tf.Tensor1D;
      lut: tf.Tensor1D;
      rows: tf.Tensor2D;
      scales: tf.Tensor1D;
      /** Bytes it occupies on the device. */
      bytes: number;
    }
  | { format: 'bf16'; shape: [number, number]; data: tf.Tensor1D; bytes: number }
  | { format: 'f32'; shape: [number, number]; weight: tf.Tensor2D; bytes: number };

/** Uploads a palettized weight. */
export function uploadPaletteWeight(h: PaletteWeightHost): PackedWeight {
  const [n] = h.shape;
  const rows = new Int32Array(2 * n);
  for (let s = 0; s < n; s++) {
    rows[2 * s] = h.rowOut[s];
    rows[2 * s + 1] = h.rowGroup[s];
  }
  const codes = new Int32Array(h.codes.buffer, h.codes.byteOffset, h.codes.length);
  return {
    format: 'palette',
    shape: h.shape,
    bits: h.bits,
    clusterDim: h.clusterDim,
    codes: tf.tensor1d(Int32Array.from(codes), 'int32'),
    lut: tf.tensor1d(h.lut, 'float32'),
    rows: tf.tensor2d(rows, [n, 2], 'int32'),
    scales: tf.tensor1d(h.scales, 'float32'),
    bytes: 4 * (codes.length + h.lut.length + 3 * n),
  };
}

/** Uploads a 16-bit weight [N, K] given as bf16 bits (two per 32-bit word on the device). */
export function uploadBf16Weight(shape: [number, number], bits: Uint16Array): PackedWeight {
  if (bits.length !== shape[0] * shape[1])
    throw new ShapeError(`uploadBf16Weight: ${bits.length} values for [${shape}]`);
  const data = packBf16Pairs(bits);
  return { format: 'bf16', shape, data: tf.tensor1d(data, 'int32'), bytes: data.byteLength };
}

/** Releases a packed weight's tensors. */
export function disposePackedWeight(w: PackedWeight): void {
  if (w.format === 'palette') tf.dispose([w.codes, w.lut, w.rows, w.scales]);
  else if (w.format === 'bf16') w.data.dispose();
  else w.weight.dispose();
}

function checkX(op: string, x: tf.Tensor, k: number): void {
  if (x.rank !== 2 || x.shape[1] !== k)
    throw new ShapeError(`${op}: x must be [M, ${k}], got [${x.shape}]`);
  if (x.dtype !== 'float32') throw new DTypeError(`${op}: x must be float32, got ${x.dtype}`);
}

/**
 * y = x · Wᵀ [M, N] for x [M, K] and a packed weight [N, K] (not differentiable: inference), with
 * the steps of `fuse` in the same kernel: RMSNorm of x first, a residual added to y.
 */
export function packedMatMul(
  x: tf.Tensor2D,
  w: PackedWeight,
  fuse: LinearFusionInputs = {},
): tf.Tensor2D {
  const op = 'packedMatMul';
  const [n, k] = w.shape;
  if (fuse.swiglu && fuse.rmsNorm)
    throw new InvalidArgumentError(`${op}: the rmsNorm and swiglu prologues exclude each other`);
  checkX(op, x, fuse.swiglu ? 2 * k : k);
  if (fuse.rmsNorm && (fuse.rmsNorm.weight.rank !== 1 || fuse.rmsNorm.weight.shape[0] !== k))
    throw new ShapeError(
      `${op}: the RMSNorm weight must be [${k}], got [${fuse.rmsNorm.weight.shape}]`,
    );
  const m = x.shape[0];
  if (
    fuse.residual &&
    (fuse.residual.rank !== 2 || fuse.residual.shape[0] !== m || fuse.residual.shape[1] !== n)
  )
    throw new ShapeError(`${op}: the residual must be [${m}, ${n}], got [${fuse.residual.shape}]`);
  if (w.format === 'f32')
    return tf.tidy((): tf.Tensor2D => {
      const xp = fuse.rmsNorm
        ? rmsNormRows(x, fuse.rmsNorm.weight, fuse.rmsNorm.eps)
        : fuse.swiglu
          ? siluMul(x)
          : x;
      const y = tf.matMul(xp, w.weight, false, true) as tf.Tensor2D;
      return fuse.residual ? (tf.add(y, fuse.residual) as tf.Tensor2D) : y;
    });
  const fusion: LinearFusion = {
    ...(fuse.rmsNorm ? { prologue: 'rmsnorm' as const, eps: fuse.rmsNorm.eps } : {}),
    ...(fuse.swiglu ? { prologue: 'swiglu' as const } : {}),
    ...(fuse.residual ? { residual: true } : {}),
  };
  const extra: Record<string, tf.Tensor> = {};
  if (fuse.rmsNorm) extra.g = fuse.rmsNorm.weight;
  if (fuse.residual) extra.residual = fuse.residual;
  if (w.format === 'bf16') {
    const attrs: Bf16MatMulAttrs = { n, ...fusion };
    return tf
      .engine()
      .runKernel(
        LinearKernelNames.Bf16MatMul,
        { x, w: w.data, ...extra },
        attrs as unknown as tf.NamedAttrMap,
      ) as tf.Tensor2D;
  }
  const attrs: PaletteMatMulAttrs = { bits: w.bits, clusterDim: w.clusterDim, ...fusion };
  return tf
    .engine()
    .runKernel(
      LinearKernelNames.PaletteMatMul,
      { x, codes: w.codes, lut: w.lut, rows: w.rows, scales: w.scales, ...extra },
      attrs as unknown as tf.NamedAttrMap,
    ) as tf.Tensor2D;
}

/** Rows of a bf16 table [U, K] (packed as uploadBf16Weight packs it) → float32 [N, K]. */
export function bf16GatherRows(table: PackedWeight, ids: tf.Tensor1D): tf.Tensor2D {
  if (table.format !== 'bf16')
    throw new InvalidArgumentError(`bf16GatherRows: the table must be bf16, got ${table.format}`);
  if (ids.dtype !== 'int32' || ids.rank !== 1)
    throw new DTypeError(`bf16GatherRows: ids must be int32 [N], got ${ids.dtype} [${ids.shape}]`);
  return tf.engine().runKernel(LinearKernelNames.Bf16GatherRows, { table: table.data, ids }, {
    k: table.shape[1],
    u: table.shape[0],
  } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

/** Plain references: dequantize, then multiply (float64 sums). */
export const linearReference = {
  dequantize(h: PaletteWeightHost): Float32Array {
    const [n, k] = h.shape;
    const d = h.clusterDim;
    const size = 2 ** h.bits;
    const v = k / d;
    const w = new Float32Array(n * k);
    for (let s = 0; s < n; s++) {
      const out = h.rowOut[s] * k;
      const base = h.rowGroup[s] * size * d;
      for (let j = 0; j < v; j++) {
        const idx = packedIndexAt(h.codes, h.bits, s * v + j);
        for (let e = 0; e < d; e++)
          w[out + j * d + e] = Math.fround(h.scales[s] * h.lut[base + idx * d + e]);
      }
    }
    return w;
  },
  matMulT(x: Float32Array, m: number, w: Float32Array, n: number, k: number): Float32Array {
    const y = new Float32Array(m * n);
    for (let i = 0; i < m; i++)
      for (let r = 0; r < n; r++) {
        let acc = 0;
        for (let j = 0; j < k; j++) acc += x[i * k + j] * w[r * k + j];
        y[i * n + r] = acc;
      }
    return y;
  },
  paletteMatMul(x: Float32Array, m: number, h: PaletteWeightHost): Float32Array {
    return linearReference.matMulT(x, m, linearReference.dequantize(h), h.shape[0], h.shape[1]);
  },
  /** x after a LinearFusion prologue, in float64 sums. */
  prologue(x: Float32Array, m: number, attrs: LinearFusion, g?: Float32Array): Float32Array {
    if (!attrs.prologue) return x;
    if (attrs.prologue === 'swiglu') return decodeReference.siluMul(x, m);
    const k = x.length / m;
    const out = new Float32Array(m * k);
    for (let r = 0; r < m; r++) {
      let ss = 0;
      for (let j = 0; j < k; j++) ss += x[r * k + j] ** 2;
      const inv = 1 / Math.sqrt(ss / k + (attrs.eps as number));
      for (let j = 0; j < k; j++) out[r * k + j] = x[r * k + j] * inv * (g as Float32Array)[j];
    }
    return out;
  },
  bf16MatMul(x: Float32Array, m: number, bits: Uint16Array, n: number, k: number): Float32Array {
    return linearReference.matMulT(x, m, fromHalfBits(bits, 'bf16'), n, k);
  },
};

/** A linear weight in host memory in any form the inference kernels read. */
export type HostWeight =
  | { format: 'palette'; palette: PaletteWeightHost }
  | { format: 'bf16'; shape: [number, number]; bits: Uint16Array }
  | { format: 'f32'; shape: [number, number]; data: Float32Array };

export function hostWeightShape(w: HostWeight): [number, number] {
  return w.format === 'palette' ? w.palette.shape : w.shape;
}

/**
 * Several weights with the same K as one (rows stacked), so that one kernel call computes all
 * their outputs side by side; undefined when they cannot share a kernel (a palettized weight
 * beside a dense one, or different bit widths).
 */
export function stackHostWeights(ws: HostWeight[]): HostWeight | undefined {
  if (ws.length === 1) return ws[0];
  const k = hostWeightShape(ws[0])[1];
  if (ws.some((w) => hostWeightShape(w)[1] !== k)) return undefined;
  const n = ws.reduce((a, w) => a + hostWeightShape(w)[0], 0);
  if (ws.every((w) => w.format === 'palette')) {
    const parts = ws.map((w) => (w as { palette: PaletteWeightHost }).palette);
    if (parts.some((p) => p.bits !== parts[0].bits || p.clusterDim !== parts[0].clusterDim))
      return undefined;
    return { format: 'palette', palette: stackPaletteWeights(parts) };
  }
  if (ws.some((w) => w.format === 'palette')) return undefined;
  if (ws.every((w) => w.format === 'bf16')) {
    const bits = new Uint16Array(n * k);
    let at = 0;
    for (const w of ws) {
      const b = (w as { bits: Uint16Array }).bits;
      bits.set(b, at);
      at += b.length;
    }
    return { format: 'bf16', shape: [n, k], bits };
  }
  const data = new Float32Array(n * k);
  let at = 0;
  for (const w of ws) {
    const d = w.format === 'f32' ? w.data : fromHalfBits((w as { bits: Uint16Array }).bits, 'bf16');
    data.set(d, at);
    at += d.length;
  }
  return { format: 'f32', shape: [n, k], data };
}

/** Uploads a host weight in its own form (no dense copy of a palettized or 16-bit weight). */
export function uploadHostWeight(w: HostWeight): PackedWeight {
  if (w.format === 'palette') return uploadPaletteWeight(w.palette);
  if (w.format === 'bf16') return uploadBf16Weight(w.shape, w.bits);
  return {
    format: 'f32',
    shape: w.shape,
    weight: tf.tensor2d(w.data, w.shape),
    bytes: w.data.byteLength,
  };
}
