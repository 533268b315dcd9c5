import type { CodeAttrs, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { CodeContractPartialProgram, ColumnSumProgram } from '../programs';

export const codeContract: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { table, codeToRow, x, g } = inputs as Record<string, tf.TensorInfo>;
  const { dtype } = attrs as unknown as CodeAttrs;
  const n = x.shape[0];
  const c = table.shape[1];
  const groups = Math.max(1, Math.min(2048, Math.ceil(n / (256 * 32))));
  const partials = gpu.runWebGPUProgram(
    new CodeContractPartialProgram(groups, c, dtype),
    [table, codeToRow, x, g],
    'float32',
    [
      { type: 'int32', data: [n] },
      { type: 'int32', data: [groups] },
    ],
  );
  const out = gpu.runWebGPUProgram(new ColumnSumProgram([c]), [partials], 'float32', [
    { type: 'int32', data: [groups] },
    { type: 'int32', data: [c] },
  ]);
  gpu.disposeData(partials.dataId);
  return out;
};
