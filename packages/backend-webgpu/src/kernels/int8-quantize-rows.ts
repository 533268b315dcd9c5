import { int8PackedShape, type tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { linearGroupWgsl, linearGroups } from '../grid';
import { allocate, runRaw, uniformBlock } from '../raw';

const THREADS = 256;

/**
 * WGSL: the workgroup's largest `value` (each thread's partial max in `a`) into `amax`, through
 * `red` (array<f32, THREADS> in workgroup memory); every thread reads it.
 */
export function workgroupMaxWgsl(threads: number): string {
  return `red[tid] = a;
  workgroupBarrier();
  for (var h = ${threads / 2}u; h > 0u; h = h >> 1u) {
    if (tid < h) { red[tid] = max(red[tid], red[tid + h]); }
    workgroupBarrier();
  }
  let amax = red[0];`;
}

/** WGSL: byte j of a packed int8 word holding the integer q (a float in −128…127). */
export const INT8_BYTE_WGSL =
  'fn byte(q : f32, j : u32) -> u32 { return (bitcast<u32>(i32(q)) & 0xffu) << (8u * j); }';

/**
 * EdkmInt8QuantizeRows (core's int8-linear.ts defines the values): one workgroup per row finds
 * max|x| (a tree in workgroup memory), then each thread packs four values a word (and, with
 * slices 2, their low slices: the remainders × 256).
 */
const wgsl = (slices: 1 | 2) => `
@group(0) @binding(0) var<storage, read> x : array<f32>;
@group(0) @binding(1) var<storage, read_write> hi : array<i32>;
${slices === 2 ? '@group(0) @binding(2) var<storage, read_write> lo : array<i32>;' : ''}
@group(0) @binding(${slices + 1}) var<storage, read_write> scale : array<f32>;
struct U { m : u32, k : u32, words : u32, rows : u32 };
@group(0) @binding(${slices + 2}) var<uniform> u : U;
var<workgroup> red : array<f32, ${THREADS}>;

${INT8_BYTE_WGSL}

@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(num_workgroups) nwg : vec3<u32>, @builtin(local_invocation_index) tid : u32) {
  let r = ${linearGroupWgsl()};
  if (r >= u.rows) { return; }
  if (r >= u.m) { // a padding row: zeros
    for (var w = tid; w < u.words; w = w + ${THREADS}u) {
      hi[r * u.words + w] = 0;
      ${slices === 2 ? 'lo[r * u.words + w] = 0;' : ''}
    }
    return;
  }
  let base = r * u.k;
  var a = 0.0;
  for (var t = tid; t < u.k; t = t + ${THREADS}u) { a = max(a, abs(x[base + t])); }
  ${workgroupMaxWgsl(THREADS)}
  let on = amax > 0.0;
  let inv = select(0.0, 127.0 / amax, on);
  if (tid == 0u) { scale[r] = select(0.0, amax / 127.0, on); }
  for (var w = tid; w < u.words; w = w + ${THREADS}u) {
    var h = 0u;
    ${slices === 2 ? 'var l = 0u;' : ''}
    for (var j = 0u; j < 4u; j = j + 1u) {
      let t = 4u * w + j;
      if (t < u.k) {
        let v = x[base + t] * inv;
        let q = clamp(round(v), -127.0, 127.0);
        h = h | byte(q, j);
        ${slices === 2 ? 'l = l | byte(clamp(round((v - q) * 256.0), -127.0, 127.0), j);' : ''}
      }
    }
    hi[r * u.words + w] = bitcast<i32>(h);
    ${slices === 2 ? 'lo[r * u.words + w] = bitcast<i32>(l);' : ''}
  }
}`;

export const int8QuantizeRows: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { x } = inputs as { x: tf.TensorInfo };
  const a = attrs as { slices: 1 | 2; padRows: number; padK: number };
  const slices = a.slices;
  const [m, k] = x.shape;
  const [rows, words] = int8PackedShape(m, k, { rows: a.padRows, k: a.padK });
  const hi = allocate(gpu, [rows, words], 'int32');
  const lo = slices === 2 ? allocate(gpu, [rows, words], 'int32') : undefined;
  const scale = allocate(gpu, [m]);
  const outs = lo ? [hi, lo, scale] : [hi, scale];
  if (rows === 0) return outs;
  runRaw(gpu, {
    key: `EdkmInt8QuantizeRows:${slices}`,
    wgsl: () => wgsl(slices),
    tensors: [x, ...outs],
    uniforms: uniformBlock([
      ['u', m],
      ['u', k],
      ['u', words],
      ['u', rows],
    ]),
    groups: linearGroups(rows, 'EdkmInt8QuantizeRows'),
  });
  return outs;
};
