import type { CodeAttrs, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { GatherAffineByCodeProgram } from '../programs';
import { runProgramInto } from '../raw';

export const gatherAffineByCode: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { table, x, g } = inputs as { table: tf.TensorInfo; x: tf.TensorInfo; g: tf.TensorInfo };
  const { dtype, inPlace = false } = attrs as unknown as CodeAttrs;
  const n = x.shape[0];
  const program = new GatherAffineByCodeProgram(n, dtype, inPlace, n % 4 === 0 ? 4 : 1);
  const stride = [{ type: 'int32', data: [table.shape[1]] }];
  if (!inPlace) return gpu.runWebGPUProgram(program, [table, x, g], 'float32', stride);
  // the result overwrites g's buffer and shares it (g is [n], checked by core)
  return runProgramInto(gpu, program, [table, x], stride, g);
};
