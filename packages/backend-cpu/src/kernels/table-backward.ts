import { type TableBackwardAttrs, tableReference, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { values } from './util';

export const tableBackward: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const {
    seed,
    points,
    counts,
    centroids,
    steps,
    rows: bound,
  } = inputs as Record<string, tf.TensorInfo>;
  const k = centroids.shape[1];
  const rows = steps ? values(cpu, steps)[0] + 1 : centroids.shape[0];
  const out = tableReference.backward(
    values(cpu, seed) as Float32Array,
    values(cpu, points) as Float32Array,
    values(cpu, counts) as Float32Array,
    (values(cpu, centroids) as Float32Array).subarray(0, rows * k),
    centroids.shape[1],
    (attrs as unknown as TableBackwardAttrs).tau,
    bound ? values(cpu, bound)[0] : undefined,
  );
  return cpu.makeTensorInfo([points.shape[0], 4], 'float32', out);
};
