import { type NearestEntryAttrs, nearestEntryInto, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { values } from './util';

/** EdkmNearestEntry: the float64 host loop over the tensors' own arrays (no copies in). */
export const nearestEntry: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { x, inv, table, groups, tau } = inputs as Record<string, tf.TensorInfo>;
  const { d, k } = attrs as unknown as NearestEntryAttrs;
  const [R, C] = x.shape;
  const n = (R * C) / d;
  const index = new Int32Array(n);
  const jacobian = new Float32Array(n * d * d);
  nearestEntryInto(
    values(cpu, x) as Float32Array,
    values(cpu, inv) as Float32Array,
    values(cpu, table) as Float32Array,
    values(cpu, groups) as Int32Array,
    values(cpu, tau) as Float32Array,
    R,
    C,
    d,
    k,
    index,
    jacobian,
  );
  return [
    cpu.makeTensorInfo([n], 'int32', index),
    cpu.makeTensorInfo([n, d * d], 'float32', jacobian),
  ];
};
