import { type RmsNormAttrs, normReference, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

const get = (cpu: MathBackendCPU, t: tf.TensorInfo) =>
  cpu.data.get(t.dataId).values as Float32Array;

/** EdkmRmsNormGrad: [dx, dweight] from the float64 reference. */
export const rmsNormGrad: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { x, weight, dy } = inputs as Record<string, tf.TensorInfo>;
  const { eps } = attrs as unknown as RmsNormAttrs;
  const g = normReference.rmsNormGrad(get(cpu, x), get(cpu, weight), get(cpu, dy), eps);
  return [
    cpu.makeTensorInfo(x.shape, 'float32', g.dx),
    cpu.makeTensorInfo(weight.shape, 'float32', g.dweight),
  ];
};
