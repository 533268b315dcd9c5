import { type SumSquaresAttrs, sumSquaresChunks, type tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { workgroupSum256 } from '../programs/reduce';
import { runRaw, uniformBlock } from '../raw';

const wgsl = () => `
@group(0) @binding(0) var<storage, read> x : array<f32>;
@group(0) @binding(1) var<storage, read_write> acc : array<f32>;
struct U { n : u32, offset : u32, chunk : u32, pad : u32 };
@group(0) @binding(2) var<uniform> u : U;
${workgroupSum256}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(local_invocation_index) lid : u32) {
  let start = wg.x * u.chunk;
  let end = min(u.n, start + u.chunk);
  var s = 0.0;
  for (var i = start + lid; i < end; i = i + 256u) { let v = x[i]; s = s + v * v; }
  let total = workgroupSum(lid, s);
  if (lid == 0u) { acc[u.offset + wg.x] = total; }
}`;

/** EdkmSumSquares: one workgroup per chunk, a tree sum in workgroup memory; acc in place. */
export const sumSquares: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { x, acc } = inputs as { x: tf.TensorInfo; acc: tf.TensorInfo };
  const { offset } = attrs as unknown as SumSquaresAttrs;
  const n = x.shape.reduce((a, b) => a * b, 1);
  const chunks = sumSquaresChunks(n);
  runRaw(gpu, {
    key: 'EdkmSumSquares',
    wgsl,
    tensors: [x, acc],
    uniforms: uniformBlock([
      ['u', n],
      ['u', offset],
      ['u', Math.ceil(n / chunks)],
    ]),
    groups: [chunks, 1, 1],
  });
  gpu.incRef(acc.dataId);
  return { dataId: acc.dataId, shape: acc.shape, dtype: 'float32' };
};
