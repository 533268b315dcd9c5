import type { SoftContractAttrs, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { ColumnSumProgram, SoftContractPartialProgram } from '../programs';

export const softContract: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { x, g, centroids } = inputs as Record<string, tf.TensorInfo>;
  const { dtype, tau } = attrs as unknown as SoftContractAttrs;
  const n = x.shape[0];
  const k = centroids.shape[1];
  const groups = Math.max(1, Math.min(2048, Math.ceil(n / (256 * 32))));
  const partials = gpu.runWebGPUProgram(
    new SoftContractPartialProgram(groups, k, dtype),
    [x, g, centroids],
    'float32',
    [
      { type: 'int32', data: [n] },
      { type: 'int32', data: [groups] },
      { type: 'float32', data: [tau] },
    ],
  );
  const out = gpu.runWebGPUProgram(new ColumnSumProgram([2 * k]), [partials], 'float32', [
    { type: 'int32', data: [groups] },
    { type: 'int32', data: [2 * k] },
  ]);
  gpu.disposeData(partials.dataId);
  return out;
};
