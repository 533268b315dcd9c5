import { int8PackedShape, quantizeRowsHost, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { values } from './util';

/** EdkmInt8QuantizeRows: core's host definition (int8-linear.ts). */
export const int8QuantizeRows: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { x } = inputs as { x: tf.TensorInfo };
  const [m, k] = x.shape;
  const a = attrs as { slices: 1 | 2; padRows: number; padK: number };
  const pad = { rows: a.padRows, k: a.padK };
  const q = quantizeRowsHost(values(cpu, x) as Float32Array, m, k, a.slices, pad);
  const shape = int8PackedShape(m, k, pad);
  const out = [cpu.makeTensorInfo(shape, 'int32', q.hi)];
  if (q.lo) out.push(cpu.makeTensorInfo(shape, 'int32', q.lo));
  out.push(cpu.makeTensorInfo([m], 'float32', q.scale));
  return out;
};
