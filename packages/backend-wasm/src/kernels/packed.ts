import { type LinearFusion, hostLinearFusion, type tf } from '@edkm/core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { f32, output } from '../heap';

/** Helpers shared by the packed-weight kernels (PaletteMatMul, Bf16MatMul, Bf16GatherRows); the decoders are core's. */

/** A heap int32 array read as unsigned words. */
export function wordsOf(v: Int32Array): Uint32Array {
  return new Uint32Array(v.buffer, v.byteOffset, v.length);
}

/** Below this many rows of x a packed product is a direct loop; from it on W is decoded once and XNNPACK multiplies. */
export const DECODE_THEN_GEMM_ROWS = 4;

/**
 * A LinearFusion (see @edkm/core) around a wasm linear kernel: `x` is the product's input after
 * the prologue (a heap tensor of its own, or the input itself), and `finish(y)` adds the residual
 * in place and frees the prologue's tensor.
 */
export function wasmLinearFusion(
  wasm: BackendWasm,
  inputs: Record<string, tf.TensorInfo>,
  attrs: LinearFusion,
): { x: tf.TensorInfo; finish(y: tf.TensorInfo): tf.TensorInfo } {
  const { x, g, residual } = inputs;
  const host = hostLinearFusion(f32(wasm, x), x.shape[1], attrs, g ? f32(wasm, g) : undefined);
  const xt = attrs.prologue ? output(wasm, [x.shape[0], host.width], 'float32', host.x) : x;
  return {
    x: xt,
    finish(y) {
      // heap views are taken now: allocations since may have moved the heap
      host.finish(f32(wasm, y), residual ? f32(wasm, residual) : undefined);
      if (xt !== x) wasm.disposeData(xt.dataId);
      return y;
    },
  };
}
