// Where the time of a small dispatch goes (decode is hundreds of tiny dispatches a token): the
// same chain of N tiny dependent kernels timed four ways on the device that useBackend picks.
//   raw-one-submit   Dawn directly: pipeline and bind groups made once, N dispatches, one submit
//   raw-submit-15    the same, submitting every 15 dispatches (tfjs's default batch)
//   raw-encode-only  the host time to encode and submit N dispatches, not waiting for the GPU
//   tfjs-add         N tf.add ops on 1×width tensors through tfjs and the plugin's host path
//   tfjs-add-sync    the same with a read-back every 46 ops (a decode step's pattern)
//   gpu-chain        GPU time (timestamps at the pass's start and end) of the N dependent dispatches
//                    in one pass: the device's own cost of a dependent dispatch, host excluded
//   gpu-independent  the same for N dispatches writing 16 buffers in turn (no read-after-write)
// Prints one JSON object: microseconds per dispatch for each.
// Usage: tsx dispatch.ts [--n 2000] [--width 64]
import '@edkm/backend-webgpu';
import { makeResident, tf, useBackend } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { argNumber, median, printJson } from './util';

const n = argNumber('n', 2000);
const width = argNumber('width', 64);
const selection = await useBackend('webgpu');
const device = (tf.backend() as unknown as WebGPUBackend).device;

const module = device.createShaderModule({
  code: `@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> b: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < arrayLength(&b)) { b[g.x] = a[g.x] + 1.0; }
}`,
});
const pipeline = device.createComputePipeline({
  layout: 'auto',
  compute: { module, entryPoint: 'main' },
});
const buffers = Array.from({ length: 18 }, () =>
  device.createBuffer({ size: width * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC }),
);
// ping-pong: dispatch i reads buffer i%2 and writes the other (a dependent chain, as a model's is)
const groups = [0, 1].map((i) =>
  device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: buffers[i] } },
      { binding: 1, resource: { buffer: buffers[1 - i] } },
    ],
  }),
);
const groupsX = Math.ceil(width / 64);
// (gpu-independent) dispatch i reads buffer 0 and writes buffer 2 + i % 16
const spread = Array.from({ length: 16 }, (_, i) =>
  device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: buffers[0] } },
      { binding: 1, resource: { buffer: buffers[2 + i] } },
    ],
  }),
);

/**
 * Microseconds per dispatch on the GPU: N dispatches (dependent, or writing 16 buffers in turn)
 * in one pass between two timestamps (median of 5); null without timestamp queries.
 */
async function timeGpu(dependent: boolean): Promise<number | null> {
  if (!device.features.has('timestamp-query')) return null;
  const querySet = device.createQuerySet({ type: 'timestamp', count: 2 });
  const resolve = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const read = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const times: number[] = [];
  for (let r = 0; r < 5; r++) {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass({
      timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
    });
    pass.setPipeline(pipeline);
    for (let i = 0; i < n; i++) {
      pass.setBindGroup(0, dependent ? groups[i % 2] : spread[i % 16]);
      pass.dispatchWorkgroups(groupsX);
    }
    pass.end();
    encoder.resolveQuerySet(querySet, 0, 2, resolve, 0);
    encoder.copyBufferToBuffer(resolve, 0, read, 0, 16);
    device.queue.submit([encoder.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const [t0, t1] = new BigUint64Array(read.getMappedRange().slice(0));
    read.unmap();
    times.push(Number(t1 - t0) / 1000);
  }
  querySet.destroy();
  return median(times.slice(1)) / n;
}

function encodeRaw(batch: number): void {
  let encoder = device.createCommandEncoder();
  let pass = encoder.beginComputePass();
  for (let i = 0; i < n; i++) {
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, groups[i % 2]);
    pass.dispatchWorkgroups(groupsX);
    if ((i + 1) % batch === 0 && i + 1 < n) {
      pass.end();
      device.queue.submit([encoder.finish()]);
      encoder = device.createCommandEncoder();
      pass = encoder.beginComputePass();
    }
  }
  pass.end();
  device.queue.submit([encoder.finish()]);
}

async function timeRaw(batch: number, wait: boolean): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < 5; r++) {
    await device.queue.onSubmittedWorkDone();
    const t0 = performance.now();
    encodeRaw(batch);
    if (wait) await device.queue.onSubmittedWorkDone();
    times.push(performance.now() - t0);
  }
  return (median(times.slice(1)) * 1000) / n;
}

async function timeTfjs(syncEvery: number): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < 5; r++) {
    // on the device: tfjs-webgpu runs an op on the CPU when all its inputs still hold host values
    // (a bench of host-resident tensors times JavaScript adds, not dispatches)
    let x = tf.zeros([1, width]);
    const one = tf.ones([1, width]);
    makeResident(x);
    makeResident(one);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const y = tf.add(x, one);
      x.dispose();
      x = y;
      if ((i + 1) % syncEvery === 0) await x.data();
    }
    await x.data();
    times.push(performance.now() - t0);
    x.dispose();
    one.dispose();
  }
  return (median(times.slice(1)) * 1000) / n;
}

printJson({
  bench: 'dispatch',
  backend: selection.description,
  n,
  width,
  microsecondsPerDispatch: {
    rawOneSubmit: await timeRaw(n, true),
    rawSubmit15: await timeRaw(15, true),
    rawEncodeOnly: await timeRaw(n, false),
    tfjsAdd: await timeTfjs(n),
    tfjsAddSync46: await timeTfjs(46),
    gpuChain: await timeGpu(true),
    gpuIndependent: await timeGpu(false),
  },
});
