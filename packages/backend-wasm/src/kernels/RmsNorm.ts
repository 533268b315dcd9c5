import { decodeReference, type tf } from '@edkm/core';
import { f32, output, wasmOf } from '../heap';

/** DecodeKernelNames.RmsNorm: each row scaled by its inverse RMS and the weight. */
export const rmsNorm: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { x, weight } = inputs as Record<string, tf.TensorInfo>;
  const out = decodeReference.rmsNorm(
    f32(wasm, x),
    x.shape[1],
    f32(wasm, weight),
    (attrs as unknown as { eps: number }).eps,
  );
  return output(wasm, x.shape, 'float32', out);
};
