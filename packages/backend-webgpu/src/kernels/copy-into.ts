import type { tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { runRaw, uniformBlock } from '../raw';

const wgsl = () => `
@group(0) @binding(0) var<storage, read> src : array<f32>;
@group(0) @binding(1) var<storage, read_write> dst : array<f32>;
struct U { n : u32, stride : u32, pad0 : u32, pad1 : u32, };
@group(0) @binding(2) var<uniform> u : U;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid : vec3<u32>) {
  for (var i = gid.x; i < u.n; i = i + u.stride) {
    dst[i] = src[i];
  }
}`;

/** EdkmCopyInto: dst's values become src's, in place (one dispatch). */
export const copyInto: tf.KernelFunc = ({ inputs, backend }) => {
  const gpu = backend as WebGPUBackend;
  const { src, dst } = inputs as Record<string, tf.TensorInfo>;
  const n = dst.shape.reduce((x, y) => x * y, 1);
  const groups = Math.max(1, Math.min(4096, Math.ceil(n / 256)));
  runRaw(gpu, {
    key: 'EdkmCopyInto',
    wgsl,
    tensors: [src, dst],
    uniforms: uniformBlock([
      ['u', n],
      ['u', groups * 256],
    ]),
    groups: [groups, 1, 1],
  });
  gpu.incRef(dst.dataId);
  return { dataId: dst.dataId, shape: dst.shape, dtype: 'float32' };
};
