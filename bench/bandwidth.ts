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
import { computePass, copyBufferBandwidth, streamReadKernel, submitSeconds } from './stream-read';
import { argNumber, printJson } from './util';

const mib = argNumber('mib', 1024);
const reps = argNumber('reps', 10);
const selection = await useBackend('webgpu');
const device = (tf.backend() as unknown as WebGPUBackend).device;
const size = mib * 2 ** 20;
if (size > device.limits.maxStorageBufferBindingSize)
  throw new Error(
    `--mib ${mib}: over the device's ${device.limits.maxStorageBufferBindingSize} bytes a binding`,
  );
const out: Record<string, unknown> = {
  bench: 'bandwidth',
  backend: selection.description,
  bytes: size,
  reps,
};
const gbps: Record<string, number> = {};
// (its own two buffers, freed before the kernels' are made)
gbps['copy-buffer'] = (await copyBufferBandwidth(device, mib, reps)) / 1e9;
const usage = GPUBufferUsage.STORAGE;
const a = device.createBuffer({ size, usage });
const b = device.createBuffer({ size, usage });
const sink = device.createBuffer({ size: 4 * 256 * 65535, usage });
/** GB/s of the streaming read as `type` with `groups` workgroups. */
async function read(type: 'vec4<u32>' | 'u32', groups: number): Promise<number> {
  const { wgsl, reads } = streamReadKernel(size, type, groups);
  const run = computePass(device, wgsl, [a, sink], groups);
  return (reads * reps) / (await submitSeconds(device, run, reps)) / 1e9;
}
for (const groups of [132 * 4, 132 * 8, 132 * 16, 132 * 64])
  gbps[`read-vec4-${groups}`] = await read('vec4<u32>', groups);
gbps['read-u32'] = await read('u32', 132 * 16);
{
  const n = size / 16;
  const groups = Math.min(65535, Math.ceil(n / 256 / 8));
  const threads = groups * 256;
  const code = `@group(0) @binding(0) var<storage, read> a: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> b: array<vec4<u32>>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3u) {
  for (var i = g.x; i < ${n}u; i += ${threads}u) { b[i] = a[i]; }
}`;
  const run = computePass(device, code, [a, b], groups);
  gbps['copy-vec4'] = (2 * size * reps) / (await submitSeconds(device, run, reps)) / 1e9;
}
for (const k of Object.keys(gbps)) gbps[k] = +gbps[k].toFixed(1);
out.gbps = gbps;
a.destroy();
b.destroy();
sink.destroy();
printJson(out);
