import { type Bf16MatMulAttrs, bf16Gemv, decodeBf16Pairs, type tf } from '@edkm/core';
import { f32, heapOffset, i32, output, wasmOf } from '../heap';
import { simdKernels } from '../simd';
import { batchMatMul } from './BatchMatMul';
import { DECODE_THEN_GEMM_ROWS, wasmLinearFusion, wordsOf } from './packed';

/** y = x · Wᵀ with W [N, K] as bf16 pairs (LinearKernelNames.Bf16MatMul); see PaletteMatMul for the two paths. */
export const bf16MatMul: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { w } = inputs as Record<string, tf.TensorInfo>;
  const fused = attrs as unknown as Bf16MatMulAttrs;
  const { n } = fused;
  const lf = wasmLinearFusion(wasm, inputs as Record<string, tf.TensorInfo>, fused);
  const { x } = lf;
  const [m, k] = x.shape;
  if (m >= DECODE_THEN_GEMM_ROWS) {
    const dense = output(wasm, [n, k], 'float32');
    decodeBf16Pairs(wordsOf(i32(wasm, w)), 0, n * k, f32(wasm, dense));
    const y = batchMatMul({
      inputs: { a: x, b: dense },
      backend,
      attrs: { transposeA: false, transposeB: true },
    }) as tf.TensorInfo;
    wasm.disposeData(dense.dataId);
    return lf.finish(y);
  }
  const y = output(wasm, [m, n], 'float32');
  const simd = m === 1 && k % 16 === 0 ? simdKernels(wasm) : undefined;
  if (simd) {
    simd.bf16Gemv(heapOffset(wasm, w), heapOffset(wasm, x), heapOffset(wasm, y), n, k);
    return lf.finish(y);
  }
  const out = f32(wasm, y);
  const xv = f32(wasm, x);
  bf16Gemv(wordsOf(i32(wasm, w)), xv, m, n, k, out);
  return lf.finish(y);
};
