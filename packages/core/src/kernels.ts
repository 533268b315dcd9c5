import * as tf from '@tensorflow/tfjs-core';
import { DTypeError, InvalidArgumentError, ShapeError } from './errors';
import { toHalfBits } from './half';

/**
 * The project's custom kernels, by name. Each backend plugin registers an implementation of every
 * one (see docs/plugins.md); `@edkm/core/testing` checks them against the plain references below.
 */
export const KernelNames = {
  /** out[i, :] = table[indices[i], :] — inputs {table: [U, K] f32, indices: [N] i32} → [N, K]. */
  GatherRows: 'EdkmGatherRows',
  /** out[u, :] = Σ_{i: indices[i] = u} values[i, :] — inputs {values: [N, K], indices: [N]}, attrs {numRows} → [numRows, K]. */
  ScatterAddRows: 'EdkmScatterAddRows',
  /** out[i] = x[i] · table[indices[i], 0] + table[indices[i], 1] — inputs {table: [U, 2], indices: [N], x: [N]} → [N]. */
  GatherAffine: 'EdkmGatherAffine',
  /**
   * Kernels keyed by the 16-bit code of each float32 element (rounded to nearest even in the
   * kernel: no index list exists). attrs {dtype: 'bf16' | 'fp16'}.
   * CodeHistogram: {x: [N]} → [65536] int32 counts.
   * GatherByCode: {table: [65536, K], x: [N]} → [N, K].
   * ScatterAddByCode: {values: [N, K], x: [N]} → [65536, K].
   * GatherAffineByCode: {table: [65536, C ≥ 2], x: [N], g: [N]} → [N]: g·table[code, 0] + table[code, 1].
   * With attrs.inPlace the result overwrites g's data and shares it (no new N-long buffer): for a
   * g that nothing else reads afterwards (a gradient the caller made and owns).
   */
  CodeHistogram: 'EdkmCodeHistogram',
  GatherByCode: 'EdkmGatherByCode',
  ScatterAddByCode: 'EdkmScatterAddByCode',
  GatherAffineByCode: 'EdkmGatherAffineByCode',
} as const;

export interface CodeAttrs {
  dtype: 'bf16' | 'fp16';
  /** GatherAffineByCode only: write the result over g's data (g is returned, as the result). */
  inPlace?: boolean;
}
const CODES = 65536;
export type KernelName = (typeof KernelNames)[keyof typeof KernelNames];

export interface ScatterAddRowsAttrs {
  numRows: number;
}

function checkIndices(indices: tf.Tensor, n: number, op: string): void {
  if (indices.dtype !== 'int32')
    throw new DTypeError(`${op}: indices must be int32, got ${indices.dtype}`);
  if (indices.rank !== 1 || indices.shape[0] !== n) {
    throw new ShapeError(`${op}: indices must have shape [${n}], got [${indices.shape}]`);
  }
}

/**
 * Gathers rows of a [U, K] table by an N-long index list → [N, K]. Differentiable in `table`
 * (its gradient is a scatter-add of the upstream rows). Indices outside [0, U) give zero rows.
 */
export function gatherRows(table: tf.Tensor2D, indices: tf.Tensor1D): tf.Tensor2D {
  if (table.rank !== 2)
    throw new ShapeError(`gatherRows: table must be 2-D [U, K], got [${table.shape}]`);
  if (table.dtype !== 'float32')
    throw new DTypeError(`gatherRows: table must be float32, got ${table.dtype}`);
  checkIndices(indices, indices.shape[0], 'gatherRows');
  return tf.engine().runKernel(KernelNames.GatherRows, { table, indices }) as tf.Tensor2D;
}

/**
 * Sums the rows of `values` [N, K] into `numRows` buckets by index → [numRows, K]. Differentiable
 * in `values` (its gradient gathers the upstream rows back). Indices outside the range are dropped.
 */
export function scatterAddRows(
  values: tf.Tensor2D,
  indices: tf.Tensor1D,
  numRows: number,
): tf.Tensor2D {
  if (values.rank !== 2)
    throw new ShapeError(`scatterAddRows: values must be 2-D [N, K], got [${values.shape}]`);
  if (values.dtype !== 'float32')
    throw new DTypeError(`scatterAddRows: values must be float32, got ${values.dtype}`);
  if (!Number.isInteger(numRows) || numRows < 1) {
    throw new InvalidArgumentError(
      `scatterAddRows: numRows must be a positive integer, got ${numRows}`,
    );
  }
  checkIndices(indices, values.shape[0], 'scatterAddRows');
  const attrs: ScatterAddRowsAttrs = { numRows };
  return tf
    .engine()
    .runKernel(
      KernelNames.ScatterAddRows,
      { values, indices },
      attrs as unknown as tf.NamedAttrMap,
    ) as tf.Tensor2D;
}

/**
 * Per-element affine map with coefficients gathered by index: out[i] = x[i]·a[idx[i]] + b[idx[i]]
 * where table = [a, b] is [U, 2]. One pass, no [N, 2] intermediate (eDKM's per-weight gradient).
 * Out-of-range indices give 0. Not differentiable (it is itself a backward-pass kernel).
 */
export function gatherAffine(
  table: tf.Tensor2D,
  indices: tf.Tensor1D,
  x: tf.Tensor1D,
): tf.Tensor1D {
  if (table.rank !== 2 || table.shape[1] !== 2)
    throw new ShapeError(`gatherAffine: table must be [U, 2], got [${table.shape}]`);
  if (table.dtype !== 'float32' || x.dtype !== 'float32')
    throw new DTypeError('gatherAffine: table and x must be float32');
  if (x.rank !== 1) throw new ShapeError(`gatherAffine: x must be 1-D, got [${x.shape}]`);
  checkIndices(indices, x.shape[0], 'gatherAffine');
  return tf.engine().runKernel(KernelNames.GatherAffine, { table, indices, x }) as tf.Tensor1D;
}

function checkCodeInput(x: tf.Tensor, op: string): void {
  if (x.dtype !== 'float32')
    throw new DTypeError(`${op}: x must be a 1-D float32 tensor, got ${x.dtype} [${x.shape}]`);
  if (x.rank !== 1)
    throw new ShapeError(`${op}: x must be a 1-D float32 tensor, got ${x.dtype} [${x.shape}]`);
}
function codeAttrs(dtype: 'bf16' | 'fp16'): tf.NamedAttrMap {
  if (dtype !== 'bf16' && dtype !== 'fp16')
    throw new InvalidArgumentError(`dtype must be 'bf16' or 'fp16', got '${dtype}'`);
  return { dtype } as unknown as tf.NamedAttrMap;
}

/** Occurrences of every 16-bit code among the (rounded) elements of x → int32 [65536]. */
export function codeHistogram(x: tf.Tensor1D, dtype: 'bf16' | 'fp16'): tf.Tensor1D {
  checkCodeInput(x, 'codeHistogram');
  return tf.engine().runKernel(KernelNames.CodeHistogram, { x }, codeAttrs(dtype)) as tf.Tensor1D;
}

/** Rows of a 65,536-row table picked by the 16-bit code of each element of x → [N, K]. */
export function gatherByCode(
  table: tf.Tensor2D,
  x: tf.Tensor1D,
  dtype: 'bf16' | 'fp16',
): tf.Tensor2D {
  checkCodeInput(x, 'gatherByCode');
  if (table.rank !== 2 || table.shape[0] !== CODES)
    throw new ShapeError(`gatherByCode: table must be [65536, K], got [${table.shape}]`);
  return tf
    .engine()
    .runKernel(KernelNames.GatherByCode, { table, x }, codeAttrs(dtype)) as tf.Tensor2D;
}

/** Sums of the rows of `values` [N, K] per 16-bit code of x → [65536, K]. */
export function scatterAddByCode(
  values: tf.Tensor2D,
  x: tf.Tensor1D,
  dtype: 'bf16' | 'fp16',
): tf.Tensor2D {
  checkCodeInput(x, 'scatterAddByCode');
  if (values.rank !== 2 || values.shape[0] !== x.shape[0])
    throw new ShapeError(
      `scatterAddByCode: values must be [${x.shape[0]}, K], got [${values.shape}]`,
    );
  return tf
    .engine()
    .runKernel(KernelNames.ScatterAddByCode, { values, x }, codeAttrs(dtype)) as tf.Tensor2D;
}

/** g·table[code(x), 0] + table[code(x), 1] per element → [N] (columns past 1 are ignored). */
export function gatherAffineByCode(
  table: tf.Tensor2D,
  x: tf.Tensor1D,
  g: tf.Tensor1D,
  dtype: 'bf16' | 'fp16',
  options: { inPlace?: boolean } = {},
): tf.Tensor1D {
  checkCodeInput(x, 'gatherAffineByCode');
  if (table.rank !== 2 || table.shape[0] !== CODES || table.shape[1] < 2) {
    throw new ShapeError(`gatherAffineByCode: table must be [65536, C >= 2], got [${table.shape}]`);
  }
  if (g.rank !== 1 || g.shape[0] !== x.shape[0])
    throw new ShapeError(`gatherAffineByCode: g must be [${x.shape[0]}], got [${g.shape}]`);
  if (options.inPlace && g.dtype !== 'float32')
    throw new DTypeError(`gatherAffineByCode: an in-place g must be float32, got ${g.dtype}`);
  const attrs = { ...codeAttrs(dtype), inPlace: options.inPlace === true };
  return tf
    .engine()
    .runKernel(KernelNames.GatherAffineByCode, { table, x, g }, attrs) as tf.Tensor1D;
}

tf.registerGradient({
  kernelName: KernelNames.GatherRows,
  inputsToSave: ['table', 'indices'],
  gradFunc: (dy, saved) => {
    const [table, indices] = saved as [tf.Tensor2D, tf.Tensor1D];
    return {
      table: () => scatterAddRows(dy as tf.Tensor2D, indices, table.shape[0]),
      indices: () => tf.zerosLike(indices),
    };
  },
});

tf.registerGradient({
  kernelName: KernelNames.ScatterAddRows,
  inputsToSave: ['indices'],
  gradFunc: (dy, saved) => {
    const [indices] = saved as [tf.Tensor1D];
    return {
      values: () => gatherRows(dy as tf.Tensor2D, indices),
      indices: () => tf.zerosLike(indices),
    };
  },
});

/** Plain typed-array references of the custom kernels: the ground truth of the conformance suite. */
export const reference = {
  gatherRows(table: Float32Array, k: number, indices: Int32Array): Float32Array {
    const u = table.length / k;
    const out = new Float32Array(indices.length * k);
    for (let i = 0; i < indices.length; i++) {
      const row = indices[i];
      if (row < 0 || row >= u) continue;
      out.set(table.subarray(row * k, row * k + k), i * k);
    }
    return out;
  },
  scatterAddRows(
    values: Float32Array,
    k: number,
    indices: Int32Array,
    numRows: number,
  ): Float32Array {
    const out = new Float64Array(numRows * k);
    for (let i = 0; i < indices.length; i++) {
      const row = indices[i];
      if (row < 0 || row >= numRows) continue;
      for (let j = 0; j < k; j++) out[row * k + j] += values[i * k + j];
    }
    return Float32Array.from(out);
  },
  codeHistogram(x: Float32Array, dtype: 'bf16' | 'fp16'): Int32Array {
    const codes = toHalfBits(x, dtype);
    const out = new Int32Array(CODES);
    for (let i = 0; i < codes.length; i++) out[codes[i]]++;
    return out;
  },
  gatherByCode(table: Float32Array, x: Float32Array, dtype: 'bf16' | 'fp16'): Float32Array {
    return reference.gatherRows(table, table.length / CODES, Int32Array.from(toHalfBits(x, dtype)));
  },
  scatterAddByCode(values: Float32Array, x: Float32Array, dtype: 'bf16' | 'fp16'): Float32Array {
    return reference.scatterAddRows(
      values,
      values.length / x.length,
      Int32Array.from(toHalfBits(x, dtype)),
      CODES,
    );
  },
  gatherAffine(table: Float32Array, indices: Int32Array, x: Float32Array): Float32Array {
    const u = table.length / 2;
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const row = indices[i];
      if (row >= 0 && row < u)
        out[i] = Math.fround(Math.fround(x[i] * table[2 * row]) + table[2 * row + 1]);
    }
    return out;
  },
};
