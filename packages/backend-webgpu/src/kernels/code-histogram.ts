import type { CodeAttrs, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { CodeHistogramCopiesProgram, HistogramMergeProgram, ZerosProgram } from '../programs';

export const codeHistogram: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { x } = inputs as { x: tf.TensorInfo };
  const { dtype } = attrs as unknown as CodeAttrs;
  const n = x.shape[0];
  const groups = Math.max(1, Math.min(1024, Math.ceil(n / (256 * 8))));
  const copies = Math.min(32, groups);
  const parts = gpu.runWebGPUProgram(new ZerosProgram([copies * 65536]), [], 'int32');
  gpu.runWebGPUProgram(
    new CodeHistogramCopiesProgram(groups, copies, dtype),
    [x],
    'int32',
    [
      { type: 'int32', data: [n] },
      { type: 'int32', data: [groups] },
    ],
    parts,
  );
  const out = gpu.runWebGPUProgram(new HistogramMergeProgram(), [parts], 'int32', [
    { type: 'int32', data: [copies] },
  ]);
  gpu.disposeData(parts.dataId);
  return out;
};
