import { ShapeError } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';

/**
 * What the WebGPU backend did on the host since the last reset: dispatches, submissions, uniform
 * buffers written, bind groups created, read-backs and uploads. Counted by the plugin's wrapper
 * around tfjs's backend (always on; a few integer increments per dispatch).
 */
export interface WebGPUHostStats {
  /** Compute dispatches encoded (tfjs programs and the plugin's own kernels). */
  dispatches: number;
  /** Dispatches per program (tfjs program class or plugin kernel name). */
  byProgram: Record<string, number>;
  /** queue.submit calls. */
  submits: number;
  /** Replays of recorded device graphs (their dispatches count in `dispatches`, as DeviceGraph). */
  replays: number;
  /** Uniform buffers written (a cached one reused is not counted). */
  uniformWrites: number;
  /** Bind groups created (a cached one reused is not counted). */
  bindGroups: number;
  /** Device → host reads (tensor.data()) and their bytes. */
  readbacks: number;
  readbackBytes: number;
  /** Host → device uploads (tensors created from host values at first use) and their bytes. */
  uploads: number;
  uploadBytes: number;
}

const zero = (): WebGPUHostStats => ({
  dispatches: 0,
  byProgram: {},
  submits: 0,
  replays: 0,
  uniformWrites: 0,
  bindGroups: 0,
  readbacks: 0,
  readbackBytes: 0,
  uploads: 0,
  uploadBytes: 0,
});

let stats = zero();

/** The counters since the last resetWebGPUHostStats() (a copy). */
export function webgpuHostStats(): WebGPUHostStats {
  return { ...stats, byProgram: { ...stats.byProgram } };
}

export function resetWebGPUHostStats(): void {
  stats = zero();
}

/** Counts one dispatch of `program` (the plugin's own kernels call it too). */
export function countDispatch(program: string, n = 1): void {
  stats.dispatches += n;
  stats.byProgram[program] = (stats.byProgram[program] ?? 0) + n;
}

/** Counts one replay of a recorded graph of n dispatches (one submission). */
export function countReplay(n: number): void {
  countDispatch('DeviceGraph', n);
  stats.replays++;
  stats.submits++;
}

export function countBindGroup(): void {
  stats.bindGroups++;
}

/** One recorded dispatch of a DeviceGraph. */
export interface RecordedDispatch {
  pipeline: GPUComputePipeline;
  group: GPUBindGroup;
  groups: [number, number, number];
  /** The tfjs program class or the plugin kernel (for DeviceGraph.profile). */
  name: string;
}

/**
 * What a capture collects (see graph.ts): the dispatches in order, every tensor bound (referenced
 * once each so that its buffer outlives the step), the tensors written, the uniform buffers made
 * for the graph alone, and why the step cannot be replayed, if it cannot.
 */
export interface Recorder {
  dispatches: RecordedDispatch[];
  bound: Set<object>;
  written: Set<object>;
  uniforms: GPUBuffer[];
  broken?: string;
}
let recorder: Recorder | undefined;
/** Starts (a Recorder) or stops (undefined) recording the dispatches encoded from now on. */
export function setRecorder(r: Recorder | undefined): void {
  recorder = r;
}
/** Notes tensors bound by a dispatch being recorded (`written`: its outputs). */
export function noteBound(
  b: { incRef(dataId: object): void },
  inputs: { dataId: object }[],
  outputs: { dataId: object }[],
): void {
  if (!recorder) return;
  for (const t of [...inputs, ...outputs]) {
    if (recorder.bound.has(t.dataId)) continue;
    recorder.bound.add(t.dataId);
    b.incRef(t.dataId);
  }
  for (const t of outputs) recorder.written.add(t.dataId);
}

type Uniform = { type: string; data: number[] };
type TensorInfoLike = { dataId: object; shape: number[]; dtype: string };
interface Program {
  pipeline: GPUComputePipeline | Promise<GPUComputePipeline>;
  shaderKey: string;
  dispatch: [number, number, number];
  size?: boolean;
  outputShape: number[];
  outputComponent?: number;
  pixelsOpType?: unknown;
}
/** The members of tfjs's WebGPUBackend (4.22) that the host path reads or replaces. */
interface Internals {
  device: GPUDevice;
  queue: GPUQueue;
  tensorMap: { get(id: object): { values: unknown; resource?: unknown; dtype: string } };
  bufferManager: { acquireBuffer(size: number, usage: number): GPUBuffer };
  commandEncoder: GPUCommandEncoder | null;
  computePassEncoder: GPUComputePassEncoder | null;
  commandQueueOwnedIds: WeakSet<object>;
  dispatchCountInPass: number;
  activeTimers: unknown;
  uniformPendingDisposal: GPUBuffer[];
  submitQueue(): void;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  incRef(dataId: object): void;
  uploadToGPU(dataId: object): void;
  getBufferData(buffer: GPUBuffer): Promise<ArrayBuffer>;
  makeUniforms(u: Uniform[]): GPUBufferBinding;
  recordAndSubmit(
    program: Program,
    output: TensorInfoLike,
    inputs: TensorInfoLike[],
    programDefinedUniform?: Uniform[],
  ): void;
}

/** Bytes of one WGSL uniform block, laid out as tfjs's makeUniforms does. */
function uniformBytes(programUniform: Uniform[]): ArrayBuffer {
  let offset = 0;
  let preLength = 0;
  let maxAlign = 1;
  const offsets: number[] = [];
  for (const d of programUniform) {
    if (d.data.length === 0) d.data = [1];
    const n = d.data.length;
    let align = n === 1 ? 4 : n === 2 ? 8 : 16;
    if (n > 6) throw new ShapeError(`unsupported ${n}-D uniform`);
    if (preLength === 5 || preLength === 6) align = 16;
    maxAlign = Math.max(maxAlign, align);
    offset = Math.ceil(offset / align) * align;
    preLength = n;
    offsets.push(offset);
    offset += n * 4;
  }
  const size = Math.ceil(offset / maxAlign) * maxAlign;
  const bytes = new ArrayBuffer(size);
  programUniform.forEach((d, i) => {
    if (d.type === 'int32') new Int32Array(bytes, offsets[i], d.data.length).set(d.data);
    else if (d.type === 'uint32') new Uint32Array(bytes, offsets[i], d.data.length).set(d.data);
    else new Float32Array(bytes, offsets[i], d.data.length).set(d.data);
  });
  return bytes;
}

const MAX_CACHED_UNIFORMS = 16384;
const MAX_CACHED_BIND_GROUPS = 8192;

/**
 * Host-side work per dispatch, cut down: a uniform block with the same bytes as an earlier one
 * reuses that earlier buffer (uniforms are never written again once cached, so a reuse is always
 * safe), and a bind group for the same pipeline and the same buffers is created once. tfjs 4.22
 * writes a new uniform buffer and creates a new bind group for every dispatch.
 */
export class HostCache {
  private readonly uniforms = new Map<string, GPUBuffer>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly ids = new WeakMap<object, number>();
  private nextId = 1;

  /**
   * `transient` makes a uniform buffer that is released after the next submit (tfjs's pool);
   * without it, an uncached block gets a buffer of its own that is never reused.
   */
  constructor(
    private readonly device: GPUDevice,
    private readonly transient?: (bytes: ArrayBuffer) => GPUBuffer,
  ) {}

  id(o: object): number {
    let id = this.ids.get(o);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(o, id);
    }
    return id;
  }

  /**
   * A uniform buffer holding exactly `bytes`: created and written once per distinct content, or,
   * with `cache` false (values that change every step) or a full cache, a pooled one for this
   * submission only.
   */
  uniform(bytes: ArrayBuffer, cache = true): GPUBuffer {
    if (recorder && (!cache || this.uniforms.size >= MAX_CACHED_UNIFORMS)) {
      // a graph replays its uniforms: one of its own, never pooled
      const buffer = this.device.createBuffer({
        size: bytes.byteLength,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      this.device.queue.writeBuffer(buffer, 0, bytes);
      recorder.uniforms.push(buffer);
      return buffer;
    }
    if (this.transient && (!cache || this.uniforms.size >= MAX_CACHED_UNIFORMS)) {
      stats.uniformWrites++;
      return this.transient(bytes);
    }
    const words = new Int32Array(bytes);
    let key = `${bytes.byteLength}`;
    for (let i = 0; i < words.length; i++) key += `,${words[i]}`;
    let buffer = this.uniforms.get(key);
    if (!buffer) {
      buffer = this.device.createBuffer({
        size: bytes.byteLength,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      this.device.queue.writeBuffer(buffer, 0, bytes);
      stats.uniformWrites++;
      // a full cache stops growing (the buffers in it stay valid: they may be in queued work)
      if (this.uniforms.size < MAX_CACHED_UNIFORMS) this.uniforms.set(key, buffer);
    }
    return buffer;
  }

  /** The bind group of `pipeline` with these buffers at bindings 0, 1, … (cached). */
  bindGroup(pipeline: GPUComputePipeline, buffers: GPUBuffer[]): GPUBindGroup {
    let key = `${this.id(pipeline)}`;
    for (const b of buffers) key += `,${this.id(b)}`;
    let group = this.bindGroups.get(key);
    if (!group) {
      group = this.device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
      });
      stats.bindGroups++;
      // bind groups hold their buffers: drop the whole cache when full (JS collects them)
      if (this.bindGroups.size >= MAX_CACHED_BIND_GROUPS) this.bindGroups.clear();
      this.bindGroups.set(key, group);
    }
    return group;
  }
}

const caches = new WeakMap<object, HostCache>();

/** The host cache of a backend made by this plugin (undefined for a plain WebGPUBackend). */
export function hostCache(backend: WebGPUBackend): HostCache | undefined {
  return caches.get(backend);
}

/**
 * Installs the counters and the host cache on one tfjs WebGPUBackend: recordAndSubmit is replaced
 * by the same recording with cached uniforms and bind groups (tfjs 4.22's logic otherwise,
 * including its timestamp queries under tf.time), read-backs and uploads are counted.
 */
export function installHostPath(backend: WebGPUBackend, opts: { cache: boolean }): void {
  const b = backend as unknown as Internals;
  const cache = new HostCache(b.device, (bytes) => {
    const buffer = b.bufferManager.acquireBuffer(
      bytes.byteLength,
      GPUBufferUsage.COPY_DST | GPUBufferUsage.UNIFORM,
    );
    b.queue.writeBuffer(buffer, 0, bytes);
    b.uniformPendingDisposal.push(buffer);
    return buffer;
  });
  caches.set(backend, cache);
  const batch = () => tfEnvBatch();

  const getBufferData = b.getBufferData.bind(b);
  b.getBufferData = (buffer: GPUBuffer) => {
    stats.readbacks++;
    stats.readbackBytes += buffer.size;
    return getBufferData(buffer);
  };
  const uploadToGPU = b.uploadToGPU.bind(b);
  b.uploadToGPU = (dataId: object) => {
    const d = b.tensorMap.get(dataId);
    if (d.resource == null && d.values != null) {
      stats.uploads++;
      stats.uploadBytes += (d.values as ArrayLike<number>).length * 4;
    }
    uploadToGPU(dataId);
  };
  const submitQueue = b.submitQueue.bind(b);
  b.submitQueue = () => {
    if (recorder && b.activeTimers != null) recorder.broken ??= 'tf.time is active';
    stats.submits++;
    submitQueue();
  };
  const recordAndSubmit = b.recordAndSubmit.bind(b);
  b.recordAndSubmit = (program, output, inputs, programDefinedUniform) => {
    countDispatch(program.constructor.name);
    // timed programs (tf.time with timestamp queries) and textures: tfjs's own path
    if (
      !opts.cache ||
      b.activeTimers != null ||
      program.pixelsOpType != null ||
      program.pipeline instanceof Promise
    ) {
      if (recorder)
        recorder.broken ??= `${program.constructor.name} ran outside the cached host path`;
      stats.bindGroups++;
      stats.uniformWrites++;
      recordAndSubmit(program, output, inputs, programDefinedUniform);
      return;
    }
    const uniforms: Uniform[] = [
      { type: 'float32', data: [Number.NaN] },
      { type: 'float32', data: [Number.POSITIVE_INFINITY] },
    ];
    for (const t of [...inputs, output]) {
      uniforms.push({ type: 'int32', data: t.shape });
      uniforms.push({ type: 'int32', data: strides(t.shape) });
    }
    if (program.size) {
      const size = t_size(program.outputShape);
      uniforms.push({
        type: 'int32',
        data: [program.outputComponent ? size / program.outputComponent : size],
      });
    }
    if (programDefinedUniform) uniforms.push(...programDefinedUniform);
    const buffers = [output, ...inputs].map((t) => b.tensorMap.get(t.dataId).resource as GPUBuffer);
    buffers.push(cache.uniform(uniformBytes(uniforms)));
    for (const t of inputs) b.commandQueueOwnedIds.add(t.dataId);
    b.commandQueueOwnedIds.add(output.dataId);
    noteBound(b, inputs, [output]);
    const group = cache.bindGroup(program.pipeline as GPUComputePipeline, buffers);
    encode(
      b,
      program.pipeline as GPUComputePipeline,
      group,
      program.dispatch,
      batch(),
      program.constructor.name,
    );
  };
}

/** Encodes one dispatch into the backend's open compute pass, submitting every `batch`. */
export function encodeDispatch(
  backend: WebGPUBackend,
  pipeline: GPUComputePipeline,
  group: GPUBindGroup,
  dispatch: [number, number, number],
  name = 'raw',
): void {
  encode(backend as unknown as Internals, pipeline, group, dispatch, tfEnvBatch(), name);
}

function encode(
  b: Internals,
  pipeline: GPUComputePipeline,
  group: GPUBindGroup,
  dispatch: [number, number, number],
  batch: number,
  name: string,
): void {
  recorder?.dispatches.push({ pipeline, group, groups: dispatch, name });
  b.ensureCommandEncoderReady();
  if (!b.computePassEncoder) b.computePassEncoder = b.commandEncoder!.beginComputePass({});
  b.computePassEncoder.setPipeline(pipeline);
  b.computePassEncoder.setBindGroup(0, group);
  b.computePassEncoder.dispatchWorkgroups(dispatch[0], dispatch[1], dispatch[2]);
  b.dispatchCountInPass++;
  if (b.dispatchCountInPass >= batch) {
    b.endComputePassEncoder();
    b.submitQueue();
  }
}

let envBatch: (() => number) | undefined;
/** Set once by the plugin: tfjs's WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE. */
export function setBatchSource(f: () => number): void {
  envBatch = f;
}
function tfEnvBatch(): number {
  return envBatch?.() ?? 15;
}

function strides(shape: number[]): number[] {
  const out: number[] = [];
  let s = 1;
  for (let i = shape.length - 1; i > 0; i--) {
    s *= shape[i];
    out.unshift(s);
  }
  return out;
}

function t_size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
