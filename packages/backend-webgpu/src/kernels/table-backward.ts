import { BackendError, DeviceLimitError, type TableBackwardAttrs, type tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { TableBackwardProgram } from '../programs';

export const tableBackward: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const {
    seed,
    points,
    counts,
    centroids,
    steps,
    rows: bound,
  } = inputs as Record<string, tf.TensorInfo>;
  const [rows, k] = centroids.shape;
  if (k > 256)
    throw new DeviceLimitError(
      'EdkmTableBackward on WebGPU supports at most 256 centroids (one workgroup of 256)',
    );
  const { tau } = attrs as unknown as TableBackwardAttrs;
  return gpu.runWebGPUProgram(
    new TableBackwardProgram(points.shape[0], k, steps !== undefined, bound !== undefined),
    [seed, points, counts, centroids, ...(steps ? [steps] : []), ...(bound ? [bound] : [])],
    'float32',
    [
      { type: 'int32', data: [points.shape[0]] },
      { type: 'int32', data: [rows - 1] },
      { type: 'float32', data: [tau] },
    ],
  );
};
