import { quantizeRowsHost, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { values } from './util';

/** EdkmInt8QuantizeRows: core's host definition (int8-linear.ts). */
export const int8QuantizeRows: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { x } = inputs as { x: tf.TensorInfo };
  const [m, k] = x.shape;
  const slices = (attrs as { slices: 1 | 2 }).slices;
  const q = quantizeRowsHost(values(cpu, x) as Float32Array, m, k, slices);
  const w = Math.ceil(k / 4);
  const out = [cpu.makeTensorInfo([m, w], 'int32', q.hi)];
  if (q.lo) out.push(cpu.makeTensorInfo([m, w], 'int32', q.lo));
  out.push(cpu.makeTensorInfo([m], 'float32', q.scale));
  return out;
};
