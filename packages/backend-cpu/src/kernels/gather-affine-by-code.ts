import type { CodeAttrs, tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { codesOf, values } from './util';

export const gatherAffineByCode: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { table, x, g } = inputs as { table: tf.TensorInfo; x: tf.TensorInfo; g: tf.TensorInfo };
  const codes = codesOf(cpu, x, attrs);
  const coef = values(cpu, table) as Float32Array;
  const up = values(cpu, g) as Float32Array;
  const stride = table.shape[1];
  const inPlace = (attrs as unknown as CodeAttrs).inPlace === true;
  const out = inPlace ? up : new Float32Array(codes.length);
  for (let i = 0; i < codes.length; i++)
    out[i] = up[i] * coef[stride * codes[i]] + coef[stride * codes[i] + 1];
  if (!inPlace) return cpu.makeTensorInfo([codes.length], 'float32', out);
  cpu.incRef(g.dataId);
  return { dataId: g.dataId, shape: [codes.length], dtype: 'float32' };
};
