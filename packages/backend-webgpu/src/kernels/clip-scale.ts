import type { ClipScaleAttrs, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { workgroupSum256 } from '../programs/reduce';
import { allocate, runRaw, uniformBlock } from '../raw';

const wgsl = () => `
@group(0) @binding(0) var<storage, read> acc : array<f32>;
@group(0) @binding(1) var<storage, read_write> out : array<f32>;
struct U { s : u32, maxNorm : f32, pad0 : u32, pad1 : u32 };
@group(0) @binding(2) var<uniform> u : U;
${workgroupSum256}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid : u32) {
  var s = 0.0;
  for (var i = lid; i < u.s; i = i + 256u) { s = s + acc[i]; }
  let total = workgroupSum(lid, s);
  if (lid == 0u) {
    let norm = sqrt(total);
    let bits = bitcast<u32>(norm);
    let isNan = (bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0u;
    var scale = 1.0;
    if (u.maxNorm > 0.0 && norm > u.maxNorm) { scale = u.maxNorm / norm; }
    if (isNan) { scale = norm; }
    out[0] = norm;
    out[1] = scale;
  }
}`;

/** EdkmClipScale: the global norm and clip factor in one workgroup (no read-back). */
export const clipScale: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { acc } = inputs as { acc: tf.TensorInfo };
  const { maxNorm } = attrs as unknown as ClipScaleAttrs;
  const out = allocate(gpu, [2]);
  runRaw(gpu, {
    key: 'EdkmClipScale',
    wgsl,
    tensors: [acc, out],
    uniforms: uniformBlock([
      ['u', acc.shape.reduce((a, b) => a * b, 1)],
      ['f', maxNorm],
    ]),
    groups: [1, 1, 1],
  });
  return out;
};
