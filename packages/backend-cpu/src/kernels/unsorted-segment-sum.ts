import { tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { values } from './util';

/**
 * tfjs's own cpu UnsortedSegmentSum (the gradient of every gather, e.g. an embedding lookup)
 * loops over the segments and sums a masked copy of the whole input for each: O(segments × N).
 * This one adds each row into its segment once, in input order (the same float32 sums): O(N).
 */
export const unsortedSegmentSum: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const { numSegments } = attrs as unknown as { numSegments: number };
  const rows = tf.util.sizeFromShape(segmentIds.shape);
  const inner = rows === 0 ? 0 : tf.util.sizeFromShape(x.shape) / rows;
  const src = values(cpu, x);
  const ids = values(cpu, segmentIds);
  const out =
    x.dtype === 'int32'
      ? new Int32Array(numSegments * inner)
      : new Float32Array(numSegments * inner);
  for (let i = 0; i < rows; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue; // tfjs drops out-of-range ids
    const to = s * inner;
    const from = i * inner;
    for (let j = 0; j < inner; j++) out[to + j] += src[from + j];
  }
  const shape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  return cpu.makeTensorInfo(shape, x.dtype === 'int32' ? 'int32' : 'float32', out);
};
