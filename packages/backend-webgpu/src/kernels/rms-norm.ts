import type { tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { TFJS_LINEAR_GROUP, linearGroups } from '../grid';
import { EdkmProgram } from '../programs';

const WG = 256;

/**
 * DecodeKernelNames.RmsNorm: one workgroup of 256 per row (sum of squares reduced in workgroup
 * memory; the decode step's final norm is one row of 4,096: 64 threads took 32 µs on the H200).
 */
export class RmsNormProgram extends EdkmProgram {
  override workgroupSize: [number, number, number] = [WG, 1, 1];
  variableNames = ['x', 'weight'];
  uniforms = 'h : i32, eps : f32,';
  shaderKey = 'edkm_rms_norm';
  constructor(shape: number[]) {
    super(shape, linearGroups(shape[0], 'EdkmRmsNorm'));
  }
  getUserCode(): string {
    return `
      var<workgroup> red : array<f32, ${WG}>;
      fn main(index : i32) {
        let tid = i32(localIndex);
        let row = min(${TFJS_LINEAR_GROUP}, uniforms.outShape[0] - 1) * uniforms.h;
        var ss = 0.0;
        for (var i = tid; i < uniforms.h; i = i + ${WG}) { let v = x[row + i]; ss = ss + v * v; }
        red[tid] = ss;
        workgroupBarrier();
        for (var stride = ${WG / 2}; stride > 0; stride = stride / 2) {
          if (tid < stride) { red[tid] = red[tid] + red[tid + stride]; }
          workgroupBarrier();
        }
        let inv = inverseSqrt(red[0] / f32(uniforms.h) + uniforms.eps);
        for (var i = tid; i < uniforms.h; i = i + ${WG}) {
          setOutputAtIndex(row + i, x[row + i] * inv * weight[i]);
        }
      }`;
  }
}

export const rmsNorm: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { x, weight } = inputs as Record<string, tf.TensorInfo>;
  const { eps } = attrs as unknown as { eps: number };
  return gpu.runWebGPUProgram(new RmsNormProgram(x.shape), [x, weight], 'float32', [
    { type: 'int32', data: [x.shape[1]] },
    { type: 'float32', data: [eps] },
  ]);
};
