// Device-memory bandwidth through WebGPU as a memory-bound kernel sees it: a compute kernel
// streaming a buffer with vec4<u32> (or u32) loads, each thread striding over the grid with four
// loads in flight (xor-reduced; one word per thread written). On the H200 this reaches 4.4 TB/s
// (PyTorch's copy and sum 4.1–4.2) while copyBufferToBuffer gives 0.85
// (bench/results/h200-2026-12-03/bandwidth-s4-2.json): the roof for the decode GEMV's GB/s.
import { median } from './util';

/**
 * Seconds of one submit of `encode` run `n` times (its second argument counts them; after one
 * warm-up submit): the median of 3.
 */
export async function submitSeconds(
  device: GPUDevice,
  encode: (enc: GPUCommandEncoder, i: number) => void,
  n: number,
): Promise<number> {
  const once = async (count: number) => {
    const enc = device.createCommandEncoder();
    for (let i = 0; i < count; i++) encode(enc, i);
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / 1000;
  };
  await once(1);
  return median([await once(n), await once(n), await once(n)]);
}

/**
 * Bytes read + written a second by copyBufferToBuffer between two buffers of `mib` MiB, back and
 * forth `reps` times in one submit (far below a streaming kernel on the H200).
 */
export async function copyBufferBandwidth(
  device: GPUDevice,
  mib: number,
  reps: number,
): Promise<number> {
  const size = mib * 2 ** 20;
  const usage = GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const a = device.createBuffer({ size, usage });
  const b = device.createBuffer({ size, usage });
  const seconds = await submitSeconds(
    device,
    (enc, i) => enc.copyBufferToBuffer(i % 2 ? b : a, 0, i % 2 ? a : b, 0, size),
    reps,
  );
  a.destroy();
  b.destroy();
  return (2 * size * reps) / seconds;
}

/** One pass of a compute pipeline from WGSL `code` over `buffers` (bindings 0..), `groups` workgroups. */
export function computePass(
  device: GPUDevice,
  code: string,
  buffers: GPUBuffer[],
  groups: number,
): (enc: GPUCommandEncoder) => void {
  const module = device.createShaderModule({ code });
  const pipeline = device.createComputePipeline({
    layout: 'auto',
    compute: { module, entryPoint: 'main' },
  });
  const bind = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  return (enc) => {
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(groups);
    pass.end();
  };
}

/**
 * The streaming-read kernel over `bytes` of a buffer read as `type` with `groups` workgroups of
 * 256: its WGSL and the bytes it reads (a whole number of 4-load steps per thread).
 */
export function streamReadKernel(
  bytes: number,
  type: 'vec4<u32>' | 'u32',
  groups: number,
): { wgsl: string; reads: number } {
  const width = type === 'u32' ? 4 : 16;
  const threads = groups * 256;
  const per = Math.floor(bytes / width / threads / 4) * 4; // elements a thread reads
  const fold = type === 'u32' ? 'v' : 'v.x ^ v.y ^ v.z ^ v.w';
  const wgsl = `@group(0) @binding(0) var<storage, read> a: array<${type}>;
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
  return { wgsl, reads: per * threads * width };
}

/** Bytes a second the streaming read reaches over a `mib` MiB buffer (vec4 loads, 132·8 workgroups). */
export async function streamReadBandwidth(
  device: GPUDevice,
  mib = 512,
  reps = 10,
): Promise<number> {
  const size = Math.min(mib * 2 ** 20, device.limits.maxStorageBufferBindingSize);
  const groups = Math.min(1056, Math.max(1, Math.floor(size / 16 / 256 / 4)));
  const a = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE });
  const sink = device.createBuffer({ size: 4 * 256 * groups, usage: GPUBufferUsage.STORAGE });
  const { wgsl, reads } = streamReadKernel(size, 'vec4<u32>', groups);
  const seconds = await submitSeconds(device, computePass(device, wgsl, [a, sink], groups), reps);
  a.destroy();
  sink.destroy();
  return (reads * reps) / seconds;
}
