import { type TableIterateAttrs, tableReference, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { values } from './util';

export const tableIterate: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { points, counts, c0, rows } = inputs as Record<string, tf.TensorInfo>;
  const out = tableReference.iterateAll(
    values(cpu, points) as Float32Array,
    values(cpu, counts) as Float32Array,
    values(cpu, c0) as Float32Array,
    attrs as unknown as TableIterateAttrs,
    // rows past the bound weigh 0: the reference leaves them out
    rows ? values(cpu, rows)[0] : undefined,
  );
  return cpu.makeTensorInfo([out.length], 'float32', out);
};
