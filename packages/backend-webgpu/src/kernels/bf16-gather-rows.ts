import type { tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { FlatProgram } from '../programs';

/** out[i, j] = bf16 table[ids[i], j] as float32 (LinearKernelNames.Bf16GatherRows); 0 out of range. */
export class Bf16GatherRowsProgram extends FlatProgram {
  variableNames = ['table', 'ids'];
  uniforms = 'k : i32, u : i32,';
  shaderKey = 'edkm_bf16_gather_rows';
  constructor(n: number, k: number) {
    super([n, k]);
  }
  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let i = index / uniforms.k;
          let j = index - i * uniforms.k;
          let id = ids[i];
          var v = 0.0;
          if (id >= 0 && id < uniforms.u) {
            let e = id * uniforms.k + j;
            let word = bitcast<u32>(table[e / 2]);
            v = bitcast<f32>(select(word << 16u, word & 0xffff0000u, (e & 1) == 1));
          }
          setOutputAtIndex(index, v);
        }
      }`;
  }
}

export const bf16GatherRows: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { table, ids } = inputs as Record<string, tf.TensorInfo>;
  const { k, u } = attrs as unknown as { k: number; u: number };
  return gpu.runWebGPUProgram(new Bf16GatherRowsProgram(ids.shape[0], k), [table, ids], 'float32', [
    { type: 'int32', data: [k] },
    { type: 'int32', data: [u] },
  ]);
};
