import type { CodeAttrs, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { GatherAffineByCodeProgram } from '../programs';
import { markWritten } from '../raw';

export const gatherAffineByCode: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { table, x, g } = inputs as { table: tf.TensorInfo; x: tf.TensorInfo; g: tf.TensorInfo };
  const { dtype, inPlace = false } = attrs as unknown as CodeAttrs;
  const n = x.shape[0];
  const program = new GatherAffineByCodeProgram(n, dtype, inPlace, n % 4 === 0 ? 4 : 1);
  const stride = [{ type: 'int32', data: [table.shape[1]] }];
  if (!inPlace) return gpu.runWebGPUProgram(program, [table, x, g], 'float32', stride);
  // the result overwrites g's buffer and shares it: one more reference to g's data
  gpu.runWebGPUProgram(program, [table, x], 'float32', stride, g);
  markWritten(gpu, g);
  gpu.incRef(g.dataId);
  return { dataId: g.dataId, shape: [n], dtype: 'float32' };
};
