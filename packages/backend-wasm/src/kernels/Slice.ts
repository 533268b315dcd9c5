import { BackendError, tf } from '@edkm/core';
import '@tensorflow/tfjs-backend-wasm';
import { copyRun, view, wasmOf } from '../heap';

const tfjsSlice = tf.getKernel('Slice', 'wasm')?.kernelFunc;

/**
 * tf.slice. tfjs's wasm kernel copies each innermost run with `set(subarray(…))`, a view allocated
 * per run: slicing a column out of a [65536, 4] table (DKM's backward, every layer, every step)
 * allocates 65,536 views. Same copy here, short runs element by element, any rank.
 */
export const slice: tf.KernelFunc = (args) => {
  const { inputs, backend, attrs } = args;
  const wasm = wasmOf(backend);
  const { x } = inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string' || x.dtype === 'complex64') {
    if (!tfjsSlice)
      throw new BackendError("tfjs's wasm backend has no Slice kernel", 'KERNEL_MISSING');
    return tfjsSlice(args);
  }
  const { begin, size } = attrs as unknown as { begin: number | number[]; size: number | number[] };
  const [b, s] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
  const out = wasm.makeOutput(s, x.dtype);
  const n = tf.util.sizeFromShape(s);
  if (n === 0) return out;
  const dst = view(wasm, out);
  const src = view(wasm, x);
  const rank = s.length;
  const strides = tf.util.computeStrides(x.shape);
  if (rank === 0) {
    dst[0] = src[0];
    return out;
  }
  if (tf.slice_util.isSliceContinous(x.shape, b, s)) {
    copyRun(src, tf.slice_util.computeFlatOffset(b, strides), dst, 0, n);
    return out;
  }
  // an odometer over the output's outer indices; each step copies one innermost run
  const inner = s[rank - 1];
  const idx = new Array<number>(rank - 1).fill(0);
  let from = b[rank - 1];
  for (let d = 0; d < rank - 1; d++) from += b[d] * strides[d];
  for (let to = 0; to < n; to += inner) {
    copyRun(src, from, dst, to, inner);
    for (let d = rank - 2; d >= 0; d--) {
      idx[d]++;
      from += strides[d];
      if (idx[d] < s[d]) break;
      from -= s[d] * strides[d];
      idx[d] = 0;
    }
  }
  return out;
};
