import type { tf } from '@edkm/core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { HostCache, countDispatch, encodeDispatch, hostCache, noteBound } from './host';

/**
 * The plugin's own compute kernels, outside tfjs's program machinery: plain WGSL with its own
 * bindings (several outputs, read-write inputs for in-place updates), a pipeline compiled once
 * per key, uniform buffers and bind groups from the host cache, dispatched into tfjs's open
 * compute pass (so that they interleave with tfjs's ops in order).
 */
export interface RawKernel {
  /** Pipeline cache key (the WGSL must be a function of it). */
  key: string;
  /** The WGSL source: bindings 0..n-1 are `tensors` in order, binding n the uniform block. */
  wgsl: () => string;
  /** The tensors bound, in binding order. */
  tensors: tf.TensorInfo[];
  /** The uniform block's bytes (binding tensors.length), or none. */
  uniforms?: ArrayBuffer;
  /** False for uniforms that change every call (a step count, a learning rate): not cached. */
  cacheUniforms?: boolean;
  /** Workgroups in x, y, z. */
  groups: [number, number, number];
}

const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();
const fallbackCaches = new WeakMap<GPUDevice, HostCache>();

interface Internals {
  device: GPUDevice;
  tensorMap: { get(id: object): { resource?: unknown; values?: unknown } };
  commandQueueOwnedIds: WeakSet<object>;
  uploadToGPU(dataId: object): void;
  makeTensorInfo(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  incRef(dataId: object): void;
}

function pipeline(device: GPUDevice, key: string, wgsl: () => string): GPUComputePipeline {
  let byKey = pipelines.get(device);
  if (!byKey) {
    byKey = new Map();
    pipelines.set(device, byKey);
  }
  let p = byKey.get(key);
  if (!p) {
    p = device.createComputePipeline({
      layout: 'auto',
      compute: { module: device.createShaderModule({ code: wgsl() }), entryPoint: 'main' },
    });
    byKey.set(key, p);
  }
  return p;
}

const writtenBindings = new Map<string, number[]>();
/** The bindings that a kernel's WGSL declares `read_write` (the buffers it writes). */
function written(kernel: RawKernel): number[] {
  let w = writtenBindings.get(kernel.key);
  if (!w) {
    w = [...kernel.wgsl().matchAll(/@binding\((\d+)\)\s*var<storage,\s*read_write>/g)].map((m) =>
      Number(m[1]),
    );
    writtenBindings.set(kernel.key, w);
  }
  return w;
}

/**
 * Drops the host copy that tfjs keeps of a tensor once it has been read (`tensor.data()` caches
 * the values on the CPU and returns them from then on): after a kernel writes the tensor's buffer
 * in place, that copy is stale and the next read must come from the device.
 */
export function markWritten(backend: WebGPUBackend, t: tf.TensorInfo): void {
  const d = (backend as unknown as Internals).tensorMap.get(t.dataId);
  if (d) d.values = null;
}

/**
 * Runs a tfjs program whose output is `target`'s own buffer (an in-place update), drops tfjs's
 * stale host copy of it, and returns `target`'s data as the kernel's output (one more reference).
 */
export function runProgramInto(
  backend: WebGPUBackend,
  program: WebGPUProgram,
  inputs: tf.TensorInfo[],
  uniforms: { type: string; data: number[] }[],
  target: tf.TensorInfo,
): tf.TensorInfo {
  backend.runWebGPUProgram(program, inputs, 'float32', uniforms, target);
  markWritten(backend, target);
  backend.incRef(target.dataId);
  return { dataId: target.dataId, shape: target.shape, dtype: 'float32' };
}

/** A new float32/int32 tensor of the backend with a device buffer (contents undefined). */
export function allocate(
  backend: WebGPUBackend,
  shape: number[],
  dtype: tf.DataType = 'float32',
): tf.TensorInfo {
  const b = backend as unknown as Internals;
  const t = b.makeTensorInfo(shape, dtype);
  b.uploadToGPU(t.dataId);
  return t;
}

/** Records one dispatch of a raw kernel (in queue order with tfjs's own work). */
export function runRaw(backend: WebGPUBackend, kernel: RawKernel): void {
  const b = backend as unknown as Internals;
  let cache = hostCache(backend);
  if (!cache) {
    cache = fallbackCaches.get(b.device) ?? new HostCache(b.device);
    fallbackCaches.set(b.device, cache);
  }
  const buffers = kernel.tensors.map((t) => {
    b.uploadToGPU(t.dataId);
    b.commandQueueOwnedIds.add(t.dataId);
    return b.tensorMap.get(t.dataId).resource as GPUBuffer;
  });
  if (kernel.uniforms) buffers.push(cache.uniform(kernel.uniforms, kernel.cacheUniforms ?? true));
  const p = pipeline(b.device, kernel.key, kernel.wgsl);
  const name = kernel.key.split(':')[0];
  countDispatch(name);
  const outs = written(kernel).filter((i) => i < kernel.tensors.length);
  noteBound(
    b,
    kernel.tensors,
    outs.map((i) => kernel.tensors[i]),
  );
  encodeDispatch(backend, p, cache.bindGroup(p, buffers), kernel.groups, name);
  for (const i of written(kernel))
    if (i < kernel.tensors.length) markWritten(backend, kernel.tensors[i]);
}

/** A uniform block from 4-byte fields in order (i32 for 'i', u32 for 'u', f32 for 'f'). */
export function uniformBlock(fields: ['i' | 'u' | 'f', number][]): ArrayBuffer {
  const size = Math.max(16, Math.ceil((fields.length * 4) / 16) * 16);
  const bytes = new ArrayBuffer(size);
  const view = new DataView(bytes);
  fields.forEach(([type, value], i) => {
    if (type === 'f') view.setFloat32(i * 4, value, true);
    else if (type === 'u') view.setUint32(i * 4, value, true);
    else view.setInt32(i * 4, value, true);
  });
  return bytes;
}
