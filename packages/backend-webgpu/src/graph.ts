import type { DeviceGraph, GraphProfile, GraphRun, tf } from '@edkm/core';
import { BackendError, ShapeError } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import {
  type RecordedDispatch,
  type Recorder,
  countReplay,
  setRecorder,
  webgpuHostStats,
} from './host';
import { markWritten } from './raw';

/** The members of tfjs's WebGPUBackend (4.22) that a graph reads. */
interface Internals {
  device: GPUDevice;
  queue: GPUQueue;
  tensorMap: {
    get(id: object): { resource?: unknown; values?: unknown } | undefined;
    has(id: object): boolean;
  };
  commandEncoder: GPUCommandEncoder | null;
  endComputePassEncoder(): void;
  submitQueue(): void;
  uploadToGPU(dataId: object): void;
  disposeData(dataId: object, force?: boolean): boolean;
}

/** Submits what tfjs has encoded so far (queue order for what follows). */
function submitPending(b: Internals): void {
  if (!b.commandEncoder) return;
  b.endComputePassEncoder();
  b.submitQueue();
}

function encodeRecorded(pass: GPUComputePassEncoder, d: RecordedDispatch): void {
  pass.setPipeline(d.pipeline);
  pass.setBindGroup(0, d.group);
  pass.dispatchWorkgroups(d.groups[0], d.groups[1], d.groups[2]);
}

function bufferOf(b: Internals, t: tf.Tensor): GPUBuffer {
  b.uploadToGPU(t.dataId);
  const buffer = b.tensorMap.get(t.dataId)?.resource as GPUBuffer | undefined;
  if (!buffer) throw new BackendError(`graph: a [${t.shape}] tensor has no device buffer`);
  return buffer;
}

/**
 * Records `fn`'s dispatches (see captureGraph in @edkm/core): the plugin's host path notes each
 * dispatch's pipeline, bind group and grid, and references every tensor bound so that no buffer of
 * the step goes back to tfjs's pool while the graph lives. Undefined when the step read back to the
 * host or ran a program outside the cached host path (tf.time, textures).
 */
export function capture(backend: WebGPUBackend, fn: () => void): DeviceGraph | undefined {
  const b = backend as unknown as Internals;
  submitPending(b);
  const rec: Recorder = { dispatches: [], bound: new Set(), written: new Set(), uniforms: [] };
  const readsBefore = webgpuHostStats().readbacks;
  setRecorder(rec);
  try {
    fn();
  } finally {
    setRecorder(undefined);
  }
  submitPending(b);
  if (webgpuHostStats().readbacks !== readsBefore) rec.broken ??= 'the step read back to the host';
  const graph = new WebGPUGraph(b, rec);
  if (rec.broken || rec.dispatches.length === 0) {
    graph.dispose();
    return undefined;
  }
  return graph;
}

class WebGPUGraph implements DeviceGraph {
  private disposed = false;
  constructor(
    private readonly b: Internals,
    private readonly rec: Recorder,
  ) {}

  get dispatches(): number {
    return this.rec.dispatches.length;
  }

  run(opts: GraphRun = {}): void {
    this.replay(opts, true);
  }

  /** A replay; without `dispatches`, only its writes and copies (profile() runs the dispatches). */
  private replay(opts: GraphRun, dispatches: boolean): void {
    if (this.disposed) throw new BackendError('graph: run after dispose');
    const { b } = this;
    // a tensor's first upload is a copy that tfjs encodes in its own pending commands: all buffers
    // first, then those commands submitted, then the writes and this graph's work in queue order
    const buffers = new Map<tf.Tensor, GPUBuffer>();
    const pairs = [...(opts.copies ?? []), ...(opts.after ?? [])].flat();
    for (const t of [...(opts.writes ?? []).map(([t]) => t), ...pairs])
      buffers.set(t, bufferOf(b, t));
    submitPending(b);
    for (const [t, values] of opts.writes ?? []) {
      const buffer = buffers.get(t)!;
      if (values.byteLength > t.size * 4)
        throw new ShapeError(`graph: ${values.length} values for a [${t.shape}] tensor`);
      b.queue.writeBuffer(buffer, 0, values.buffer, values.byteOffset, values.byteLength);
      markWritten(b as unknown as WebGPUBackend, t);
    }
    const encoder = b.device.createCommandEncoder();
    const copy = (pairs: [tf.Tensor, tf.Tensor][]) => {
      for (const [src, dst] of pairs) {
        if (src.size !== dst.size)
          throw new ShapeError(`graph: copy of [${src.shape}] into [${dst.shape}]`);
        encoder.copyBufferToBuffer(buffers.get(src)!, 0, buffers.get(dst)!, 0, src.size * 4);
        markWritten(b as unknown as WebGPUBackend, dst);
      }
    };
    copy(opts.copies ?? []);
    const pass = encoder.beginComputePass();
    for (const d of dispatches ? this.rec.dispatches : []) encodeRecorded(pass, d);
    pass.end();
    copy(opts.after ?? []);
    b.queue.submit([encoder.finish()]);
    if (dispatches) countReplay(this.rec.dispatches.length);
    for (const id of this.rec.written) {
      const d = b.tensorMap.get(id);
      if (d) d.values = null;
    }
  }

  async profile(opts: GraphRun = {}): Promise<GraphProfile | undefined> {
    if (this.disposed) throw new BackendError('graph: profile after dispose');
    const { b } = this;
    if (!b.device.features.has('timestamp-query')) return undefined;
    const dispatches = this.rec.dispatches;
    // the writes and copies of a replay, then the dispatches one pass each with two timestamps
    this.replay({ writes: opts.writes, copies: opts.copies }, false);
    const perSet = 2048; // passes per query set (4096 queries)
    const times = new Float64Array(dispatches.length);
    for (let start = 0; start < dispatches.length; start += perSet) {
      const part = dispatches.slice(start, start + perSet);
      const querySet = b.device.createQuerySet({ type: 'timestamp', count: 2 * part.length });
      const bytes = 16 * part.length;
      const resolve = b.device.createBuffer({
        size: bytes,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      });
      const staging = b.device.createBuffer({
        size: bytes,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      const encoder = b.device.createCommandEncoder();
      part.forEach((d, i) => {
        const pass = encoder.beginComputePass({
          timestampWrites: {
            querySet,
            beginningOfPassWriteIndex: 2 * i,
            endOfPassWriteIndex: 2 * i + 1,
          },
        });
        encodeRecorded(pass, d);
        pass.end();
      });
      encoder.resolveQuerySet(querySet, 0, 2 * part.length, resolve, 0);
      encoder.copyBufferToBuffer(resolve, 0, staging, 0, bytes);
      b.queue.submit([encoder.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      const ns = new BigUint64Array(staging.getMappedRange().slice(0));
      staging.unmap();
      part.forEach((_, i) => {
        times[start + i] = Number(ns[2 * i + 1] - ns[2 * i]) / 1000;
      });
      for (const o of [querySet, resolve, staging]) o.destroy();
    }
    countReplay(dispatches.length);
    const by = new Map<string, { dispatches: number; microseconds: number }>();
    dispatches.forEach((d, i) => {
      const e = by.get(d.name) ?? { dispatches: 0, microseconds: 0 };
      e.dispatches++;
      e.microseconds += times[i];
      by.set(d.name, e);
    });
    return {
      dispatches: dispatches.length,
      gpuMicroseconds: times.reduce((a, x) => a + x, 0),
      byKernel: [...by]
        .map(([name, e]) => ({ name, ...e }))
        .sort((x, y) => y.microseconds - x.microseconds),
    };
  }

  read(t: tf.Tensor): Promise<tf.backend_util.TypedArray> {
    // tfjs caches a read's values on the host; a replay has written the buffer since
    markWritten(this.b as unknown as WebGPUBackend, t);
    return t.data();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    submitPending(this.b);
    for (const id of this.rec.bound) if (this.b.tensorMap.has(id)) this.b.disposeData(id);
    // the uniform buffers may still be read by queued work: WebGPU keeps a destroyed buffer's
    // memory until that work completes
    for (const u of this.rec.uniforms) u.destroy();
    this.rec.dispatches.length = 0;
  }
}
