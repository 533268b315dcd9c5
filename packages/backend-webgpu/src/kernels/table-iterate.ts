import { type TableIterateAttrs, tableIterateLayout, type tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { TableIterateProgram } from '../programs';

export const tableIterate: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { points, counts, c0, rows } = inputs as Record<string, tf.TensorInfo>;
  const { tau, iterations, epsilon } = attrs as unknown as TableIterateAttrs;
  const u = points.shape[0];
  const k = c0.shape[1];
  const { size } = tableIterateLayout(u, k, iterations);
  return gpu.runWebGPUProgram(
    new TableIterateProgram(size, k, iterations, rows !== undefined),
    rows ? [points, counts, c0, rows] : [points, counts, c0],
    'float32',
    [
      { type: 'int32', data: [u] },
      { type: 'float32', data: [tau] },
      { type: 'float32', data: [epsilon] },
    ],
  );
};
