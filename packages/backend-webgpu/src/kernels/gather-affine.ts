import type { tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { GatherAffineProgram } from '../programs';

export const gatherAffine: tf.KernelFunc = ({ inputs, backend }) => {
  const gpu = backend as WebGPUBackend;
  const { table, indices, x } = inputs as {
    table: tf.TensorInfo;
    indices: tf.TensorInfo;
    x: tf.TensorInfo;
  };
  return gpu.runWebGPUProgram(
    new GatherAffineProgram([x.shape[0]]),
    [table, indices, x],
    'float32',
    [{ type: 'int32', data: [table.shape[0]] }],
  );
};
