import { tableReference, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { codesOf, values } from './util';

export const codeContract: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { table, codeToRow, x, g } = inputs as Record<string, tf.TensorInfo>;
  const out = tableReference.codeContract(
    values(cpu, table) as Float32Array,
    table.shape[1],
    values(cpu, codeToRow) as Int32Array,
    codesOf(cpu, x, attrs),
    values(cpu, g) as Float32Array,
  );
  return cpu.makeTensorInfo([table.shape[1]], 'float32', out);
};
