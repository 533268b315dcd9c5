import type { tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { allocate, runRaw, uniformBlock } from '../raw';

const THREADS = 256;
const MAX_GROUPS = 65535;

/** EdkmInt8Rescale: y = (sa[m] · sb[n]) · (c + lo · (c2 + c3)) (+ residual), one thread per output. */
const wgsl = (parts: 1 | 2 | 3, residual: boolean) => {
  const two = parts > 1;
  let b = 3;
  const c2 = two ? b++ : -1;
  const c3 = parts === 3 ? b++ : -1;
  const res = residual ? b++ : -1;
  const y = b++;
  return `
@group(0) @binding(0) var<storage, read> c : array<i32>;
@group(0) @binding(1) var<storage, read> sa : array<f32>;
@group(0) @binding(2) var<storage, read> sb : array<f32>;
${two ? `@group(0) @binding(${c2}) var<storage, read> c2 : array<i32>;` : ''}
${parts === 3 ? `@group(0) @binding(${c3}) var<storage, read> c3 : array<i32>;` : ''}
${residual ? `@group(0) @binding(${res}) var<storage, read> residual : array<f32>;` : ''}
@group(0) @binding(${y}) var<storage, read_write> y : array<f32>;
struct U { size : u32, n : u32, stride : u32, lo : f32, cols : u32, p0 : u32, p1 : u32, p2 : u32 };
@group(0) @binding(${b}) var<uniform> u : U;

@compute @workgroup_size(${THREADS})
fn main(@builtin(global_invocation_id) g : vec3<u32>) {
  let i = g.y * u.stride + g.x;
  if (i >= u.size) { return; }
  let row = i / u.n;
  let col = i - row * u.n;
  let at = row * u.cols + col; // c may be padded to more columns
  var v = f32(c[at]);
  ${two ? `v = v + f32(c2[at]${parts === 3 ? ' + c3[at]' : ''}) * u.lo;` : ''}
  v = (sa[row] * sb[col]) * v;
  y[i] = v${residual ? ' + residual[i]' : ''};
}`;
};

export const int8Rescale: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { c, sa, sb, c2, c3, residual } = inputs as Record<string, tf.TensorInfo>;
  const { lo } = attrs as { lo: number };
  const [m, n] = [sa.shape[0], sb.shape[0]];
  const y = allocate(gpu, [m, n]);
  const size = m * n;
  if (size === 0) return y;
  const blocks = Math.ceil(size / THREADS);
  const gx = Math.min(blocks, MAX_GROUPS);
  const tensors = [c, sa, sb];
  if (c2) tensors.push(c2);
  if (c2 && c3) tensors.push(c3);
  const parts = c2 ? (c3 ? 3 : 2) : 1;
  if (residual) tensors.push(residual);
  tensors.push(y);
  runRaw(gpu, {
    key: `EdkmInt8Rescale:${parts}${residual ? ':res' : ''}`,
    wgsl: () => wgsl(parts, residual !== undefined),
    tensors,
    uniforms: uniformBlock([
      ['u', size],
      ['u', n],
      ['u', gx * THREADS],
      ['f', c2 ? lo : 0],
      ['u', c.shape[1]],
    ]),
    groups: [gx, Math.ceil(blocks / gx), 1],
  });
  return y;
};
