import { type ScatterAddRowsAttrs, reference, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { values } from './util';

/** Per-row sums by index: the float64 reference (independent of summation order). */
export const scatterAddRows: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { values: vals, indices } = inputs as { values: tf.TensorInfo; indices: tf.TensorInfo };
  const { numRows } = attrs as unknown as ScatterAddRowsAttrs;
  const k = vals.shape[1];
  const out = reference.scatterAddRows(
    values(cpu, vals) as Float32Array,
    k,
    values(cpu, indices) as Int32Array,
    numRows,
  );
  return cpu.makeTensorInfo([numRows, k], 'float32', out);
};
