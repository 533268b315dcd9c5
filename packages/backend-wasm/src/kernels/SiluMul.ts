import { decodeReference, type tf } from '@edkm/core';
import { f32, output, wasmOf } from '../heap';

/** DecodeKernelNames.SiluMul: silu(gate) · up from one stacked [M, 2I] product. */
export const siluMul: tf.KernelFunc = ({ inputs, backend }) => {
  const wasm = wasmOf(backend);
  const { gu } = inputs as Record<string, tf.TensorInfo>;
  const [m, i2] = gu.shape;
  const out = decodeReference.siluMul(f32(wasm, gu), m);
  return output(wasm, [m, i2 / 2], 'float32', out);
};
