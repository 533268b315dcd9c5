import type { NearestEntryAttrs, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { allocate, runRaw, uniformBlock } from '../raw';

const WORKGROUP = 256;
const MAX_GROUPS = 65535;

/**
 * One invocation per vector (d consecutive weights of a row): its K distances to the row's
 * codebook, the first nearest entry, then the soft assignment's weights A_j ∝ exp(−(dist_j −
 * least)/τ) and their mean and covariance (the distances are recomputed, not kept: K ≤ 256).
 */
const wgsl = (d: number) => () =>
  `
@group(0) @binding(0) var<storage, read> x : array<f32>;
@group(0) @binding(1) var<storage, read> inv : array<f32>;
@group(0) @binding(2) var<storage, read> tbl : array<f32>;
@group(0) @binding(3) var<storage, read> groups : array<i32>;
@group(0) @binding(4) var<storage, read> tau : array<f32>;
@group(0) @binding(5) var<storage, read_write> index : array<i32>;
@group(0) @binding(6) var<storage, read_write> jac : array<f32>;
struct U { n : u32, perRow : u32, K : u32, rowStride : u32 };
@group(0) @binding(7) var<uniform> u : U;

fn dist(y : array<f32, ${d}>, at : u32) -> f32 {
  var e = 0.0;
  for (var b = 0u; b < ${d}u; b = b + 1u) {
    let diff = y[b] - tbl[at + b];
    e = e + diff * diff;
  }
  return e;
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(local_invocation_index) lid : u32) {
  let v = wg.y * u.rowStride + wg.x * ${WORKGROUP}u + lid;
  if (v >= u.n) { return; }
  let r = v / u.perRow;
  let g = u32(groups[r]);
  let s = inv[r];
  let t = tau[g];
  let base = g * u.K * ${d}u;
  var y : array<f32, ${d}>;
  for (var b = 0u; b < ${d}u; b = b + 1u) { y[b] = x[v * ${d}u + b] * s; }
  var least = dist(y, base);
  var best = 0u;
  for (var j = 1u; j < u.K; j = j + 1u) {
    let e = dist(y, base + j * ${d}u);
    if (e < least) { least = e; best = j; }
  }
  index[v] = i32(g * u.K + best);
  var z = 0.0;
  var m : array<f32, ${d}>;
  for (var b = 0u; b < ${d}u; b = b + 1u) { m[b] = 0.0; }
  for (var j = 0u; j < u.K; j = j + 1u) {
    let at = base + j * ${d}u;
    let w = exp((least - dist(y, at)) / t);
    z = z + w;
    for (var b = 0u; b < ${d}u; b = b + 1u) { m[b] = m[b] + w * tbl[at + b]; }
  }
  for (var b = 0u; b < ${d}u; b = b + 1u) { m[b] = m[b] / z; }
  var cov : array<f32, ${d * d}>;
  for (var i = 0u; i < ${d * d}u; i = i + 1u) { cov[i] = 0.0; }
  for (var j = 0u; j < u.K; j = j + 1u) {
    let at = base + j * ${d}u;
    let w = exp((least - dist(y, at)) / t);
    for (var p = 0u; p < ${d}u; p = p + 1u) {
      let dp = w * (tbl[at + p] - m[p]);
      for (var q = 0u; q < ${d}u; q = q + 1u) { cov[p * ${d}u + q] = cov[p * ${d}u + q] + dp * (tbl[at + q] - m[q]); }
    }
  }
  let f = 2.0 / (t * z);
  for (var i = 0u; i < ${d * d}u; i = i + 1u) { jac[v * ${d * d}u + i] = f * cov[i]; }
}`;

/** EdkmNearestEntry: one fused pass over the weight, two outputs (index, Jacobian). */
export const nearestEntry: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { x, inv, table, groups, tau } = inputs as Record<string, tf.TensorInfo>;
  const { d, k } = attrs as unknown as NearestEntryAttrs;
  const [R, C] = x.shape;
  const n = (R * C) / d;
  const index = allocate(gpu, [n], 'int32');
  const jacobian = allocate(gpu, [n, d * d]);
  const blocks = Math.ceil(n / WORKGROUP);
  const gx = Math.min(blocks, MAX_GROUPS);
  const gy = Math.ceil(blocks / gx);
  runRaw(gpu, {
    key: `EdkmNearestEntry:d${d}`,
    wgsl: wgsl(d),
    tensors: [x, inv, table, groups, tau, index, jacobian],
    uniforms: uniformBlock([
      ['u', n],
      ['u', C / d],
      ['u', k],
      ['u', gx * WORKGROUP],
    ]),
    groups: [gx, gy, 1],
  });
  return [index, jacobian];
};
