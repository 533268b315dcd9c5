import { type CodeAttrs, type tf, toHalfBits } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

/** The typed array that holds a tensor's values (cpu tensors live in host memory). */
export function values(backend: MathBackendCPU, t: tf.TensorInfo): tf.backend_util.TypedArray {
  return backend.data.get(t.dataId).values as tf.backend_util.TypedArray;
}

/** The 16-bit code of each float32 element of x (attrs.dtype: 'bf16' or 'fp16'). */
export function codesOf(cpu: MathBackendCPU, x: tf.TensorInfo, attrs: unknown): Uint16Array {
  return toHalfBits(values(cpu, x) as Float32Array, (attrs as CodeAttrs).dtype);
}
