import { INT8_TENSOR_CORE_PADDING, InvalidArgumentError, int8PackedShape, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { int8MatMul, int8MatMulRoute, int8SplitMatMul, int8SplitRoute } from './int8-matmul';
import { int8QuantizeRows } from './int8-quantize-rows';
import { int8Rescale } from './int8-rescale';

/**
 * The precision of float32 BatchMatMul (training's products, forward and backward):
 *  - 'f32' (default): the plugin's float32 GEMM;
 *  - 'split': core's split-precision product on int8 tensor cores (each operand's rows as
 *    scale · (hi + lo/256), ~2^−16 of the row's largest value; three int8 products), for 2-D
 *    products whose padded shape the tensor-core kernel takes (other products stay f32). Opt-in:
 *    `setMatMulPrecision('split')` or EDKM_MATMUL_PRECISION=split, with EDKM_WEBGPU_UNSAFE=1 for
 *    the tensor cores (without them every product stays f32).
 */
export type MatMulPrecision = 'f32' | 'split';
let precision: MatMulPrecision = 'f32';

export function setMatMulPrecision(p: MatMulPrecision): void {
  if (p !== 'f32' && p !== 'split')
    throw new InvalidArgumentError(`matmul precision must be 'f32' or 'split', got '${p}'`);
  precision = p;
}

export function getMatMulPrecision(): MatMulPrecision {
  return precision;
}

/**
 * How the split product runs its three int8 products: 'fused' (one kernel, int8SplitMatMul, where
 * it takes the shape; the default) or 'three' (three EdkmInt8MatMul dispatches). EDKM_SPLIT_KERNEL
 * sets it in Node.
 */
export type SplitKernel = 'fused' | 'three';
let splitKernel: SplitKernel | undefined;

export function setSplitKernel(k: SplitKernel): void {
  if (k !== 'fused' && k !== 'three')
    throw new InvalidArgumentError(`split kernel must be 'fused' or 'three', got '${k}'`);
  splitKernel = k;
}

function currentSplitKernel(): SplitKernel {
  if (!splitKernel) {
    const env = typeof process !== 'undefined' ? process.env?.EDKM_SPLIT_KERNEL : undefined;
    setSplitKernel((env as SplitKernel | undefined) ?? 'fused');
  }
  return splitKernel as SplitKernel;
}

/** Whether an M×N×K product (batch 1) runs split: the precision asks and int8 tiles fit it. */
export function takesSplit(m: number, n: number, k: number, batch: number): boolean {
  if (precision !== 'split' || batch !== 1 || m * n * k === 0) return false;
  const pad = INT8_TENSOR_CORE_PADDING;
  const [mp, words] = int8PackedShape(m, k, pad);
  const [np] = int8PackedShape(n, k, pad);
  return int8MatMulRoute(mp, np, 4 * words) !== 'plain';
}

const transposeKernel = () => tf.getKernel('Transpose', 'webgpu')?.kernelFunc;

/**
 * op(a)·op(b) (2-D, float32) as core's splitMatMul computes it, from the plugin's kernels: the
 * operands' rows along K (a transposed copy first where K runs down the columns), each quantized
 * into two int8 slices, three int8 products, one rescale. Intermediates are freed.
 */
export function splitProduct(
  gpu: WebGPUBackend,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  outShape: number[],
): tf.TensorInfo {
  const made: tf.TensorInfo[] = [];
  const keep = <T extends tf.TensorInfo | tf.TensorInfo[]>(t: T): T => {
    for (const x of [t].flat()) made.push(x);
    return t;
  };
  const mat = (t: tf.TensorInfo) => {
    const s = t.shape;
    return { dataId: t.dataId, shape: [s[s.length - 2], s[s.length - 1]], dtype: t.dtype };
  };
  // rows along K: A as [M, K] (transposed when given [K, M]), B as [N, K] (when given [K, N])
  const rowsOf = (t: tf.TensorInfo, flip: boolean) => {
    if (!flip) return mat(t);
    const transpose = transposeKernel();
    if (!transpose) throw new InvalidArgumentError("tfjs-webgpu's Transpose kernel is missing");
    return keep(
      transpose({ inputs: { x: mat(t) }, backend: gpu, attrs: { perm: [1, 0] } }) as tf.TensorInfo,
    );
  };
  const attrs = {
    slices: 2,
    padRows: INT8_TENSOR_CORE_PADDING.rows,
    padK: INT8_TENSOR_CORE_PADDING.k,
  };
  const quantize = (x: tf.TensorInfo) =>
    keep(int8QuantizeRows({ inputs: { x }, backend: gpu, attrs }) as tf.TensorInfo[]);
  const [ahi, alo, sa] = quantize(rowsOf(a, transposeA));
  const [bhi, blo, sb] = quantize(rowsOf(b, !transposeB));
  const product = (x: tf.TensorInfo, y: tf.TensorInfo) =>
    keep(int8MatMul({ inputs: { a: x, b: y }, backend: gpu, attrs: {} }) as tf.TensorInfo);
  const fused =
    currentSplitKernel() === 'fused' &&
    int8SplitRoute(ahi.shape[0], bhi.shape[0], 4 * ahi.shape[1]) !== 'plain';
  // C = hi·hi and C2 = hi·lo + lo·hi: one fused dispatch, or three products (C2 = c2 + c3)
  const parts = fused
    ? (([c, c2]) => ({ c, c2 }))(keep(int8SplitMatMul(gpu, ahi, alo, bhi, blo)))
    : { c: product(ahi, bhi), c2: product(ahi, blo), c3: product(alo, bhi) };
  const y = int8Rescale({
    inputs: { ...parts, sa, sb },
    backend: gpu,
    attrs: { lo: 1 / 256, residual: false },
  }) as tf.TensorInfo;
  for (const t of made) gpu.disposeData(t.dataId);
  return { dataId: y.dataId, shape: outShape, dtype: 'float32' };
}
