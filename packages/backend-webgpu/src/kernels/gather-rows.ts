import type { tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { GatherRowsProgram } from '../programs';

export const gatherRows: tf.KernelFunc = ({ inputs, backend }) => {
  const gpu = backend as WebGPUBackend;
  const { table, indices } = inputs as { table: tf.TensorInfo; indices: tf.TensorInfo };
  const [u, k] = table.shape;
  const n = indices.shape[0];
  const program = new GatherRowsProgram([n, k]);
  return gpu.runWebGPUProgram(program, [table, indices], 'float32', [
    { type: 'int32', data: [u] },
    { type: 'int32', data: [k] },
  ]);
};
