import type { RmsNormAttrs, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { linearGroupWgsl, linearGroups } from '../grid';
import { workgroupSum256 } from '../programs/reduce';
import { allocate, runRaw, uniformBlock } from '../raw';

const rows = () => `
@group(0) @binding(0) var<storage, read> x : array<f32>;
@group(0) @binding(1) var<storage, read> w : array<f32>;
@group(0) @binding(2) var<storage, read> dy : array<f32>;
@group(0) @binding(3) var<storage, read_write> dx : array<f32>;
@group(0) @binding(4) var<storage, read_write> rhos : array<f32>;
struct U { C : u32, eps : f32, R : u32, pad1 : u32 };
@group(0) @binding(5) var<uniform> u : U;
${workgroupSum256}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(num_workgroups) nwg : vec3<u32>, @builtin(local_invocation_index) lid : u32) {
  let r = ${linearGroupWgsl()};
  if (r >= u.R) { return; }
  let base = r * u.C;
  var s = 0.0;
  var d = 0.0;
  for (var c = lid; c < u.C; c = c + 256u) {
    let v = x[base + c];
    s = s + v * v;
    d = d + dy[base + c] * w[c] * v;
  }
  let rho = inverseSqrt(workgroupSum(lid, s) / f32(u.C) + u.eps);
  let dot = workgroupSum(lid, d);
  let k = rho * rho * rho * dot / f32(u.C);
  for (var c = lid; c < u.C; c = c + 256u) {
    dx[base + c] = rho * w[c] * dy[base + c] - x[base + c] * k;
  }
  if (lid == 0u) { rhos[r] = rho; }
}`;

// dweight in two passes: partial column sums over blocks of 64 rows, then the sum of the partials
const ROWS_PER_PART = 64;
const columnsPartial = () => `
@group(0) @binding(0) var<storage, read> x : array<f32>;
@group(0) @binding(1) var<storage, read> dy : array<f32>;
@group(0) @binding(2) var<storage, read> rhos : array<f32>;
@group(0) @binding(3) var<storage, read_write> parts : array<f32>;
struct U { R : u32, C : u32, pad0 : u32, pad1 : u32 };
@group(0) @binding(4) var<uniform> u : U;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid : vec3<u32>, @builtin(workgroup_id) wg : vec3<u32>) {
  let c = gid.x;
  if (c >= u.C) { return; }
  let r0 = wg.y * ${ROWS_PER_PART}u;
  let r1 = min(u.R, r0 + ${ROWS_PER_PART}u);
  var s = 0.0;
  for (var r = r0; r < r1; r = r + 1u) { s = s + dy[r * u.C + c] * x[r * u.C + c] * rhos[r]; }
  parts[wg.y * u.C + c] = s;
}`;
const columnsFinal = () => `
@group(0) @binding(0) var<storage, read> parts : array<f32>;
@group(0) @binding(1) var<storage, read_write> dw : array<f32>;
struct U { P : u32, C : u32, pad0 : u32, pad1 : u32 };
@group(0) @binding(2) var<uniform> u : U;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid : vec3<u32>) {
  let c = gid.x;
  if (c >= u.C) { return; }
  var s = 0.0;
  for (var p = 0u; p < u.P; p = p + 1u) { s = s + parts[p * u.C + c]; }
  dw[c] = s;
}`;

/** EdkmRmsNormGrad: dx per row in one workgroup each; dweight as blocked column sums. */
export const rmsNormGrad: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { x, weight, dy } = inputs as Record<string, tf.TensorInfo>;
  const { eps } = attrs as unknown as RmsNormAttrs;
  const [R, C] = x.shape;
  const dx = allocate(gpu, x.shape);
  const rhos = allocate(gpu, [R]);
  runRaw(gpu, {
    key: 'EdkmRmsNormGrad',
    wgsl: rows,
    tensors: [x, weight, dy, dx, rhos],
    uniforms: uniformBlock([
      ['u', C],
      ['f', eps],
      ['u', R],
    ]),
    groups: linearGroups(R, 'EdkmRmsNormGrad'),
  });
  const P = Math.ceil(R / ROWS_PER_PART);
  const parts = allocate(gpu, [P, C]);
  runRaw(gpu, {
    key: 'EdkmRmsNormGradColumns',
    wgsl: columnsPartial,
    tensors: [x, dy, rhos, parts],
    uniforms: uniformBlock([
      ['u', R],
      ['u', C],
    ]),
    groups: [Math.ceil(C / 256), P, 1],
  });
  const dw = allocate(gpu, [C]);
  runRaw(gpu, {
    key: 'EdkmRmsNormGradSum',
    wgsl: columnsFinal,
    tensors: [parts, dw],
    uniforms: uniformBlock([
      ['u', P],
      ['u', C],
    ]),
    groups: [Math.ceil(C / 256), 1, 1],
  });
  gpu.disposeData(rhos.dataId);
  gpu.disposeData(parts.dataId);
  return [dx, dw];
};
