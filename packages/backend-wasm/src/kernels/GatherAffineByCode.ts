import type { CodeAttrs, tf } from '@edkm/core';
import { codesOf, f32, output, wasmOf } from '../heap';
import { forgetTransposed } from './BatchMatMul';

/**
 * out[i] = g[i]·table[code(x[i]), 0] + table[code(x[i]), 1]; with attrs.inPlace the result is
 * written over g's heap buffer and shares it.
 */
export const gatherAffineByCode: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { table, x, g } = inputs as { table: tf.TensorInfo; x: tf.TensorInfo; g: tf.TensorInfo };
  const codes = codesOf(wasm, x, attrs);
  const stride = table.shape[1];
  const inPlace = (attrs as unknown as CodeAttrs).inPlace === true;
  const out = inPlace ? undefined : output(wasm, [codes.length], 'float32');
  const dst = f32(wasm, out ?? g);
  const up = f32(wasm, g);
  const coef = f32(wasm, table);
  for (let i = 0; i < codes.length; i++)
    dst[i] = up[i] * coef[stride * codes[i]] + coef[stride * codes[i] + 1];
  if (out) return out;
  forgetTransposed(wasm, g.dataId); // its data changed: a cached transposed copy is stale
  wasm.incRef(g.dataId);
  return { dataId: g.dataId, shape: [codes.length], dtype: 'float32' };
};
