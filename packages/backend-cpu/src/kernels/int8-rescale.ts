import { int8RescaleHost, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { values } from './util';

/** EdkmInt8Rescale: core's host definition (int8-linear.ts). */
export const int8Rescale: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { c, sa, sb, c2, c3, residual } = inputs as Record<string, tf.TensorInfo>;
  const y = int8RescaleHost(
    values(cpu, c) as Int32Array,
    values(cpu, sa) as Float32Array,
    values(cpu, sb) as Float32Array,
    {
      c2: c2 ? (values(cpu, c2) as Int32Array) : undefined,
      c3: c3 ? (values(cpu, c3) as Int32Array) : undefined,
      lo: (attrs as { lo: number }).lo,
      cols: c.shape[1],
      residual: residual ? (values(cpu, residual) as Float32Array) : undefined,
    },
  );
  return cpu.makeTensorInfo([sa.shape[0], sb.shape[0]], 'float32', y);
};
