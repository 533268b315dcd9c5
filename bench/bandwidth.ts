// How fast WebGPU moves device memory here: the roof a memory-bound kernel (the decode GEMV) can
// reach. Each way moves a buffer of --mib MiB (default 1024) several times in one submit:
//   copy-buffer     copyBufferToBuffer (read + write counted)
//   read-vec4-<W>   a kernel reading the buffer as vec4<u32> with W workgroups of 256 threads, each
//                   thread striding over the grid and unrolling U = 4 loads (xor-reduced, one word
//                   per thread written: nothing else moves)
//   read-u32        the same reading one u32 per load (a GEMV's index word per lane)
//   copy-vec4       a kernel reading and writing vec4<u32> (read + write counted)
// Prints one JSON object: GB/s for each (10⁹ bytes a second), the median of 3 submits.
// Usage: tsx bandwidth.ts [--mib 1024] [--reps 10]
import '@edkm/backend-webgpu';
import { tf, useBackend } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { argNumber, median, printJson } from './util';

const mib = argNumber('mib', 1024);
const reps = argNumber('reps', 10);
const selection = await useBackend('webgpu');
const device = (tf.backend() as unknown as WebGPUBackend).device;
const size = mib * 2 ** 20;
if (size > device.limits.maxStorageBufferBindingSize)
  throw new Error(
    `--mib ${mib}: over the device's ${device.limits.maxStorageBufferBindingSize} bytes a binding`,
  );
const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const a = device.createBuffer({ size, usage });
const b = device.createBuffer({ size, usage });
const sink = device.createBuffer({ size: 4 * 256 * 65535, usage: GPUBufferUsage.STORAGE });

/** Seconds of one submit of `encode` run `n` times (after one warm-up submit). */
async function seconds(encode: (enc: GPUCommandEncoder) => void, n: number): Promise<number> {
  const once = async (count: number) => {
    const enc = device.createCommandEncoder();
    for (let i = 0; i < count; i++) encode(enc);
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / 1000;
  };
  await once(1);
  return median([await once(n), await once(n), await once(n)]);
}

function kernel(code: string, entries: GPUBuffer[], groups: number) {
  const module = device.createShaderModule({ code });
  const pipeline = device.createComputePipeline({
    layout: 'auto',
    compute: { module, entryPoint: 'main' },
  });
  const bind = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: entries.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  return (enc: GPUCommandEncoder) => {
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(groups);
    pass.end();
  };
}

const readWgsl = (type: 'vec4<u32>' | 'u32', groups: number) => {
  const n = size / (type === 'u32' ? 4 : 16);
  const threads = groups * 256;
  const per = Math.floor(n / threads / 4) * 4; // elements a thread reads (U = 4 a step)
  const fold = type === 'u32' ? 'v' : 'v.x ^ v.y ^ v.z ^ v.w';
  return `@group(0) @binding(0) var<storage, read> a: array<${type}>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3u) {
  var acc = 0u;
  for (var i = 0u; i < ${per}u; i += 4u) {
    let base = i * ${threads}u + g.x;
    let v0 = a[base]; let v1 = a[base + ${threads}u];
    let v2 = a[base + ${2 * threads}u]; let v3 = a[base + ${3 * threads}u];
    acc ^= ${['v0', 'v1', 'v2', 'v3'].map((v) => fold.replaceAll('v', v)).join(' ^ ')};
  }
  out[g.x] = acc;
}`;
};
const readBytes = (type: 'vec4<u32>' | 'u32', groups: number) => {
  const n = size / (type === 'u32' ? 4 : 16);
  const per = Math.floor(n / (groups * 256) / 4) * 4;
  return per * groups * 256 * (type === 'u32' ? 4 : 16);
};

const out: Record<string, unknown> = {
  bench: 'bandwidth',
  backend: selection.description,
  bytes: size,
  reps,
};
const gbps: Record<string, number> = {};
const copySeconds = await seconds((enc) => enc.copyBufferToBuffer(a, 0, b, 0, size), reps);
gbps['copy-buffer'] = (2 * size * reps) / copySeconds / 1e9;
for (const groups of [132 * 4, 132 * 8, 132 * 16, 132 * 64]) {
  const run = kernel(readWgsl('vec4<u32>', groups), [a, sink], groups);
  gbps[`read-vec4-${groups}`] =
    (readBytes('vec4<u32>', groups) * reps) / (await seconds(run, reps)) / 1e9;
}
{
  const groups = 132 * 16;
  const run = kernel(readWgsl('u32', groups), [a, sink], groups);
  gbps['read-u32'] = (readBytes('u32', groups) * reps) / (await seconds(run, reps)) / 1e9;
}
{
  const n = size / 16;
  const groups = Math.min(65535, Math.ceil(n / 256 / 8));
  const threads = groups * 256;
  const code = `@group(0) @binding(0) var<storage, read> a: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> b: array<vec4<u32>>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3u) {
  for (var i = g.x; i < ${n}u; i += ${threads}u) { b[i] = a[i]; }
}`;
  const run = kernel(code, [a, b], groups);
  gbps['copy-vec4'] = (2 * size * reps) / (await seconds(run, reps)) / 1e9;
}
for (const k of Object.keys(gbps)) gbps[k] = +gbps[k].toFixed(1);
out.gbps = gbps;
a.destroy();
b.destroy();
sink.destroy();
printJson(out);
