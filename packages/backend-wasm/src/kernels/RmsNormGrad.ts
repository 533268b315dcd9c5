import { type RmsNormAttrs, normReference, type tf } from '@edkm/core';
import { f32, output, wasmOf } from '../heap';

/** EdkmRmsNormGrad: [dx, dweight] from the float64 reference over the heap. */
export const rmsNormGrad: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { x, weight, dy } = inputs as Record<string, tf.TensorInfo>;
  const { eps } = attrs as unknown as RmsNormAttrs;
  const g = normReference.rmsNormGrad(f32(wasm, x), f32(wasm, weight), f32(wasm, dy), eps);
  return [output(wasm, x.shape, 'float32', g.dx), output(wasm, weight.shape, 'float32', g.dweight)];
};
