import { type CodeAttrs, DTypeError, type tf, toHalfBits } from '@edkm/core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * Typed-array views of tensors that live on the wasm heap. A view is invalidated when the heap
 * grows (any allocation may grow it), so a kernel allocates its outputs first and takes its views
 * after, and never keeps one across an allocation.
 */
export type Values = Float32Array | Int32Array | Uint8Array;

export function wasmOf(backend: unknown): BackendWasm {
  return backend as BackendWasm;
}

export function f32(backend: BackendWasm, t: tf.TensorInfo): Float32Array {
  const v = backend.typedArrayFromHeap(t);
  if (!(v instanceof Float32Array))
    throw new DTypeError(`expected a float32 tensor, got ${t.dtype}`);
  return v;
}

export function i32(backend: BackendWasm, t: tf.TensorInfo): Int32Array {
  const v = backend.typedArrayFromHeap(t);
  if (!(v instanceof Int32Array)) throw new DTypeError(`expected an int32 tensor, got ${t.dtype}`);
  return v;
}

/** A tensor's byte offset on the wasm heap (for the plugin's own wasm kernels). */
export function heapOffset(backend: BackendWasm, t: tf.TensorInfo): number {
  return (backend.dataIdMap.get(t.dataId) as { memoryOffset: number }).memoryOffset;
}

export function view(backend: BackendWasm, t: tf.TensorInfo): Values {
  return backend.typedArrayFromHeap(t) as Values;
}

/** A new output tensor on the heap (uninitialised unless `values` are given: they are copied). */
export function output(
  backend: BackendWasm,
  shape: number[],
  dtype: 'float32' | 'int32',
  values?: Float32Array | Int32Array,
): tf.TensorInfo {
  return backend.makeOutput(shape, dtype, undefined, values);
}

/** A zero-filled float32 output and its view (taken after the allocation). */
export function zeros(backend: BackendWasm, shape: number[]): [tf.TensorInfo, Float32Array] {
  const out = output(backend, shape, 'float32');
  const v = f32(backend, out);
  v.fill(0);
  return [out, v];
}

/** The 16-bit codes of a float32 tensor (a JS array: safe across heap growth). */
export function codesOf(backend: BackendWasm, x: tf.TensorInfo, attrs: unknown): Uint16Array {
  return toHalfBits(f32(backend, x), (attrs as CodeAttrs).dtype);
}

/**
 * Below this many elements a run is copied element by element: `set(subarray(…))` allocates a view
 * per call, which costs more than the copy for short runs (a column of a [65536, 4] table is 65,536
 * runs of one element).
 */
const SHORT_RUN = 32;

/** dst[to .. to+len) = src[from .. from+len). */
export function copyRun(src: Values, from: number, dst: Values, to: number, len: number): void {
  if (len < SHORT_RUN) for (let j = 0; j < len; j++) dst[to + j] = src[from + j];
  else dst.set(src.subarray(from, from + len), to);
}
