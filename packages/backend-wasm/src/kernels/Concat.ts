import { BackendError, tf } from '@edkm/core';
import '@tensorflow/tfjs-backend-wasm';
import { copyRun, view, wasmOf } from '../heap';

const tfjsConcat = tf.getKernel('Concat', 'wasm')?.kernelFunc;

/**
 * tf.concat. tfjs's wasm kernel copies each input's run of every outer row with
 * `set(subarray(…))`, a view allocated per run (two [65536, 1] columns side by side: 131,072 views).
 * Same copy here, short runs element by element.
 */
export const concat: tf.KernelFunc = (args) => {
  const { inputs, backend, attrs } = args;
  const wasm = wasmOf(backend);
  const all = inputs as unknown as tf.TensorInfo[];
  const dtype = all[0].dtype;
  const nonEmpty = all.filter((t) => tf.util.sizeFromShape(t.shape) > 0);
  if (dtype === 'string' || dtype === 'complex64' || nonEmpty.length < 2) {
    if (!tfjsConcat)
      throw new BackendError("tfjs's wasm backend has no Concat kernel", 'KERNEL_MISSING');
    return tfjsConcat(args);
  }
  const axis = tf.util.parseAxisParam((attrs as unknown as { axis: number }).axis, all[0].shape)[0];
  const shapes = all.map((t) => t.shape);
  tf.backend_util.assertParamsConsistent(shapes, axis);
  const outShape = tf.backend_util.computeOutShape(shapes, axis);
  const out = wasm.makeOutput(outShape, dtype);
  const outer = tf.util.sizeFromShape(outShape.slice(0, axis));
  const runs = nonEmpty.map((t) => tf.util.sizeFromShape(t.shape.slice(axis)));
  const row = runs.reduce((a, r) => a + r, 0);
  const dst = view(wasm, out);
  const srcs = nonEmpty.map((t) => view(wasm, t));
  for (let o = 0; o < outer; o++) {
    let to = o * row;
    for (let i = 0; i < srcs.length; i++) {
      copyRun(srcs[i], o * runs[i], dst, to, runs[i]);
      to += runs[i];
    }
  }
  return out;
};
