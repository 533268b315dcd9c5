import { BackendError, tf } from '@edkm/core';
import '@tensorflow/tfjs-backend-wasm';
import { wasmOf } from '../heap';

const tfjsIdentity = tf.getKernel('Identity', 'wasm')?.kernelFunc;
const tfjsCast = tf.getKernel('Cast', 'wasm')?.kernelFunc;

function share(backend: unknown, x: tf.TensorInfo, dtype: tf.DataType = x.dtype): tf.TensorInfo {
  wasmOf(backend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype };
}

/**
 * Identity shares its input's buffer (one more reference), as tfjs's cpu backend does; tfjs's wasm
 * kernel copies it, and a training step runs it hundreds of times (every gradient that passes
 * through unchanged).
 */
export const identity: tf.KernelFunc = (args) => {
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string') {
    if (!tfjsIdentity)
      throw new BackendError("tfjs's wasm backend has no Identity kernel", 'KERNEL_MISSING');
    return tfjsIdentity(args);
  }
  return share(args.backend, x);
};

/**
 * Cast to the dtype a tensor already has shares its buffer too. A cast to bool is x ≠ 0 (tfjs's wasm
 * kernel copies the numbers into bytes: 3 stays 3). Other casts are tfjs's.
 */
export const cast: tf.KernelFunc = (args) => {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { dtype } = args.attrs as unknown as { dtype: tf.DataType };
  if (dtype === x.dtype && dtype !== 'string') return share(args.backend, x);
  if (dtype === 'bool' && x.dtype !== 'string' && x.dtype !== 'complex64') {
    const backend = wasmOf(args.backend);
    const out = backend.makeOutput(x.shape, 'bool');
    const dst = backend.typedArrayFromHeap(out);
    const src = backend.typedArrayFromHeap(x);
    for (let i = 0; i < src.length; i++) dst[i] = src[i] !== 0 ? 1 : 0;
    return out;
  }
  if (!tfjsCast) throw new BackendError("tfjs's wasm backend has no Cast kernel", 'KERNEL_MISSING');
  return tfjsCast(args);
};
