import { DTypeError, InvalidArgumentError, tf } from '@edkm/core';
import { copyRun, output, view, wasmOf } from '../heap';

/**
 * tf.gather. tfjs-backend-wasm 4.22's GatherV2 reads out of bounds with batchDims > 0 (a row-wise
 * gather such as picking each row's target log-probability); this one handles every axis and
 * batchDims with slice copies over the heap, and rejects out-of-range indices as tfjs's cpu backend
 * does.
 */
export const gatherV2: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = wasmOf(backend);
  const { x, indices } = inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
  const { axis, batchDims = 0 } = attrs as unknown as { axis: number; batchDims?: number };
  const parsedAxis = tf.util.parseAxisParam(axis, x.shape)[0];
  const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(
    x as tf.Tensor,
    indices as tf.Tensor,
    parsedAxis,
    batchDims,
  );
  const { batchSize, outerSize, dimSize, sliceSize, outputShape } = info;
  const perBatch = tf.util.sizeFromShape(indices.shape) / batchSize;
  const dtype = x.dtype === 'int32' ? 'int32' : 'float32';
  if (x.dtype !== 'float32' && x.dtype !== 'int32')
    throw new DTypeError(`GatherV2 on wasm: float32 and int32 only, got ${x.dtype}`);
  const idx = view(wasm, indices);
  for (let i = 0; i < idx.length; i++)
    if (idx[i] < 0 || idx[i] >= dimSize)
      throw new InvalidArgumentError(
        `GatherV2: the index value ${idx[i]} is not in [0, ${dimSize - 1}]`,
      );
  const out = output(wasm, outputShape, dtype);
  const dst = view(wasm, out);
  const src = view(wasm, x);
  const ids = view(wasm, indices);
  let o = 0;
  for (let b = 0; b < batchSize; b++)
    for (let r = 0; r < outerSize; r++) {
      const base = (b * outerSize + r) * dimSize * sliceSize;
      for (let j = 0; j < perBatch; j++) {
        const from = base + ids[b * perBatch + j] * sliceSize;
        copyRun(src, from, dst, o, sliceSize);
        o += sliceSize;
      }
    }
  return out;
};
