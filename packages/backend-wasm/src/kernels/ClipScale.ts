import { type ClipScaleAttrs, optimReference, type tf } from '@edkm/core';
import { f32, output, wasmOf } from '../heap';

/** EdkmClipScale: [global norm, clip factor] from the partial sums of squares. */
export const clipScale: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { acc } = inputs as { acc: tf.TensorInfo };
  const { maxNorm } = attrs as unknown as ClipScaleAttrs;
  const out = optimReference.clipScale(f32(wasm, acc), maxNorm);
  return output(wasm, [2], 'float32', out);
};
