import { type AdamWAttrs, adamwStepValues, type tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { runRaw, uniformBlock } from '../raw';

// sched: the step's [lr, 1 − lr·wd, c1, c2] read from a device tensor (a replayed step) instead of
// the uniforms
const wgsl = (sched: boolean) => () =>
  `
@group(0) @binding(0) var<storage, read_write> w : array<f32>;
@group(0) @binding(1) var<storage, read> g : array<f32>;
@group(0) @binding(2) var<storage, read_write> m : array<f32>;
@group(0) @binding(3) var<storage, read_write> v : array<f32>;
@group(0) @binding(4) var<storage, read> clip : array<f32>;
struct U {
  n : u32, stride : u32, lr : f32, beta1 : f32,
  beta2 : f32, eps : f32, decay : f32, c1 : f32,
  c2 : f32, pad0 : u32, pad1 : u32, pad2 : u32,
};
${sched ? '@group(0) @binding(5) var<storage, read> sched : array<f32>;' : ''}
@group(0) @binding(${sched ? 6 : 5}) var<uniform> u : U;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid : vec3<u32>) {
  let scale = clip[1];
  ${sched ? 'let lr = sched[0]; let decay = sched[1]; let c1 = sched[2]; let c2 = sched[3];' : 'let lr = u.lr; let decay = u.decay; let c1 = u.c1; let c2 = u.c2;'}
  for (var i = gid.x; i < u.n; i = i + u.stride) {
    let gi = g[i] * scale;
    let mi = u.beta1 * m[i] + (1.0 - u.beta1) * gi;
    let vi = u.beta2 * v[i] + (1.0 - u.beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i] * decay - lr * ((mi / c1) / (sqrt(vi / c2) + u.eps));
  }
}`;

/** EdkmAdamW: one AdamW step of one parameter in one pass; w, m, v updated in place. */
export const adamw: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { w, g, m, v, clip, sched } = inputs as Record<string, tf.TensorInfo>;
  const a = attrs as unknown as AdamWAttrs;
  const n = w.shape.reduce((x, y) => x * y, 1);
  const groups = Math.max(1, Math.min(4096, Math.ceil(n / 256)));
  const [lr, decay, c1, c2] = adamwStepValues(a);
  runRaw(gpu, {
    key: sched ? 'EdkmAdamWSched' : 'EdkmAdamW',
    wgsl: wgsl(sched !== undefined),
    tensors: sched ? [w, g, m, v, clip, sched] : [w, g, m, v, clip],
    uniforms: uniformBlock([
      ['u', n],
      ['u', groups * 256],
      ['f', lr],
      ['f', a.beta1],
      ['f', a.beta2],
      ['f', a.eps],
      ['f', decay],
      ['f', c1],
      ['f', c2],
    ]),
    cacheUniforms: false,
    groups: [groups, 1, 1],
  });
  gpu.incRef(w.dataId);
  return { dataId: w.dataId, shape: w.shape, dtype: 'float32' };
};
