import type { tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { FlatProgram } from '../programs';

/** DecodeKernelNames.SiluMul: out[r, i] = silu(gu[r, i]) · gu[r, I + i]. */
export class SiluMulProgram extends FlatProgram {
  variableNames = ['gu'];
  uniforms = 'half : i32,';
  shaderKey = 'edkm_silu_mul';
  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let r = index / uniforms.half;
          let i = index - r * uniforms.half;
          let g = gu[r * 2 * uniforms.half + i];
          setOutputAtIndex(index, g / (1.0 + exp(-g)) * gu[r * 2 * uniforms.half + uniforms.half + i]);
        }
      }`;
  }
}

export const siluMul: tf.KernelFunc = ({ inputs, backend }) => {
  const gpu = backend as WebGPUBackend;
  const { gu } = inputs as Record<string, tf.TensorInfo>;
  const [m, i2] = gu.shape;
  return gpu.runWebGPUProgram(new SiluMulProgram([m, i2 / 2]), [gu], 'float32', [
    { type: 'int32', data: [i2 / 2] },
  ]);
};
