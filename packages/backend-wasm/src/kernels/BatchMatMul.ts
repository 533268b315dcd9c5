import { BackendError, DTypeError, ShapeError, tf } from '@edkm/core';
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { f32, output, wasmOf } from '../heap';

const configOf = (name: string): tf.KernelConfig => {
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new BackendError(`tfjs's wasm backend has no ${name} kernel`, 'KERNEL_MISSING');
  return k;
};
// tfjs's own kernels, taken before this plugin registers its BatchMatMul over theirs
const xnnConfig = configOf('BatchMatMul');
const xnnMatMul = xnnConfig.kernelFunc;
const transposeKernel = configOf('Transpose').kernelFunc;

/** tfjs binds its BatchMatMul to the module in a set-up call that its replacement must still make. */
export function setupBatchMatMul(backend: BackendWasm): void {
  xnnConfig.setupFunc?.(backend);
}

/**
 * Transposed copies of weights for small-M products (decoding): `x · Wᵀ` with one token would
 * otherwise transpose (and XNNPACK re-pack) the whole weight for every token. Keyed by the
 * weight's buffer; dropped when the buffer is freed (see forgetTransposed).
 */
const transposedCache = new WeakMap<object, tf.TensorInfo>();
const SMALL_M = 16;

export function forgetTransposed(backend: BackendWasm, dataId: object): void {
  const cached = transposedCache.get(dataId);
  if (!cached) return;
  transposedCache.delete(dataId);
  backend.disposeData(cached.dataId);
}

function swapLast(backend: BackendWasm, t: tf.TensorInfo): tf.TensorInfo {
  const perm = t.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return transposeKernel({ inputs: { x: t }, backend, attrs: { perm } }) as tf.TensorInfo;
}

/** [batch, rows, cols] slice `i` of a heap tensor, copied into a new [1, rows, cols] tensor. */
function sliceOf(
  backend: BackendWasm,
  t: tf.TensorInfo,
  i: number,
  rows: number,
  cols: number,
): tf.TensorInfo {
  const out = output(backend, [1, rows, cols], 'float32');
  const size = rows * cols;
  f32(backend, out).set(f32(backend, t).subarray(i * size, i * size + size));
  return out;
}

/**
 * tfjs's wasm BatchMatMul runs XNNPACK only for an unbatched product without transposes; every
 * other case (every backward product, every `x · Wᵀ`, attention) falls to a naive triple loop
 * 10–30× slower. Here a transposed operand is transposed first (O(size), against O(M·N·K) for the
 * product) and a batched product runs batch by batch, so that every product is XNNPACK's.
 */
export const batchMatMul: tf.KernelFunc = ({ inputs, backend: b, attrs }) => {
  const backend = wasmOf(b);
  const { a, b: bIn } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = attrs as unknown as {
    transposeA: boolean;
    transposeB: boolean;
  };
  if (a.dtype !== 'float32' || bIn.dtype !== 'float32')
    throw new DTypeError(`BatchMatMul: float32 only on wasm, got ${a.dtype} × ${bIn.dtype}`);
  const ra = a.shape.length;
  const rb = bIn.shape.length;
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transposeB ? bIn.shape[rb - 1] : bIn.shape[rb - 2];
  const n = transposeB ? bIn.shape[rb - 2] : bIn.shape[rb - 1];
  if (k !== kb)
    throw new ShapeError(
      `Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${a.shape} and ${bIn.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
  const batchB = tf.util.sizeFromShape(bIn.shape.slice(0, -2));
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(
    a.shape.slice(0, -2),
    bIn.shape.slice(0, -2),
  );
  const batch = tf.util.sizeFromShape(outer);
  const temps: tf.TensorInfo[] = [];
  const plain = (t: tf.TensorInfo, transposed: boolean, cacheable: boolean) => {
    if (!transposed) return t;
    if (cacheable) {
      const hit = transposedCache.get(t.dataId);
      if (hit) return hit;
      const tt = swapLast(backend, t);
      transposedCache.set(t.dataId, tt);
      return tt;
    }
    const tt = swapLast(backend, t);
    temps.push(tt);
    return tt;
  };
  try {
    const a2 = plain(a, transposeA, false);
    const b2 = plain(bIn, transposeB, batchB === 1 && m <= SMALL_M);
    if (batch === 1 || (batchA === 1 && batchB === 1)) {
      const out = xnnMatMul({
        inputs: { a: a2, b: b2 },
        backend,
        attrs: { transposeA: false, transposeB: false },
      }) as tf.TensorInfo;
      return { ...out, shape: [...outer, m, n] };
    }
    if ((batchA !== 1 && batchA !== batch) || (batchB !== 1 && batchB !== batch))
      throw new ShapeError(`BatchMatMul: batch dims [${a.shape}] × [${bIn.shape}] not supported`);
    const out = output(backend, [...outer, m, n], 'float32');
    for (let i = 0; i < batch; i++) {
      const ai = sliceOf(backend, a2, batchA === 1 ? 0 : i, m, k);
      const bi = sliceOf(backend, b2, batchB === 1 ? 0 : i, k, n);
      const r = xnnMatMul({
        inputs: { a: ai, b: bi },
        backend,
        attrs: { transposeA: false, transposeB: false },
      }) as tf.TensorInfo;
      f32(backend, out).set(f32(backend, r), i * m * n);
      backend.disposeData(ai.dataId);
      backend.disposeData(bi.dataId);
      backend.disposeData(r.dataId);
    }
    return out;
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
};
