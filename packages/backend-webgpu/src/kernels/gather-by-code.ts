import type { CodeAttrs, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { GatherByCodeProgram, GatherByCodeVec4Program } from '../programs';

export const gatherByCode: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { table, x } = inputs as { table: tf.TensorInfo; x: tf.TensorInfo };
  const { dtype } = attrs as unknown as CodeAttrs;
  const k = table.shape[1];
  const n = x.shape[0];
  if (k === 1 && n % 4 === 0) {
    return gpu.runWebGPUProgram(new GatherByCodeVec4Program(n, dtype), [table, x], 'float32');
  }
  return gpu.runWebGPUProgram(new GatherByCodeProgram([n, k], dtype), [table, x], 'float32', [
    { type: 'int32', data: [k] },
  ]);
};
