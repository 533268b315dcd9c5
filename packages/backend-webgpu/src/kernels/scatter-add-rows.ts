import type { ScatterAddRowsAttrs, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { ScatterAddRowsProgram, ZerosProgram } from '../programs';

export const scatterAddRows: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { values, indices } = inputs as { values: tf.TensorInfo; indices: tf.TensorInfo };
  const { numRows } = attrs as unknown as ScatterAddRowsAttrs;
  const [n, k] = values.shape;
  const output = gpu.runWebGPUProgram(new ZerosProgram([numRows, k]), [], 'float32');
  gpu.runWebGPUProgram(
    new ScatterAddRowsProgram(n, k, numRows),
    [values, indices],
    'float32',
    [
      { type: 'int32', data: [numRows] },
      { type: 'int32', data: [k] },
      { type: 'int32', data: [n] },
    ],
    output,
  );
  return output;
};
