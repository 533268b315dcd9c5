import type { tf } from '@edkm/core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { webgpu_util } from '@tensorflow/tfjs-backend-webgpu';

/** out[i, j] = bf16 table[ids[i], j] as float32 (LinearKernelNames.Bf16GatherRows); 0 out of range. */
export class Bf16GatherRowsProgram implements WebGPUProgram {
  outputShape: number[];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  variableNames = ['table', 'ids'];
  uniforms = 'k : i32, u : i32,';
  size = true;
  shaderKey = 'edkm_bf16_gather_rows';
  constructor(n: number, k: number) {
    this.outputShape = [n, k];
    this.dispatchLayout = webgpu_util.flatDispatchLayout(this.outputShape);
    this.dispatch = webgpu_util.computeDispatch(
      this.dispatchLayout,
      this.outputShape,
      this.workgroupSize,
    );
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
