import { BackendError, tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

type BinaryFn = (a: number, b: number) => number;

/**
 * out = f(a, b) with numpy broadcasting, float32. tfjs's cpu kernels compute every broadcast
 * element's two source indices from scratch (index → coordinates → index); here the output is
 * walked row by row (rows of the last dimension), each source advancing by its own stride — 0
 * along a broadcast dimension — so the inner loop is a plain strided loop.
 */
function broadcastInto(
  f: BinaryFn,
  a: Float32Array,
  aShape: number[],
  b: Float32Array,
  bShape: number[],
  outShape: number[],
): Float32Array {
  const rank = outShape.length;
  const size = tf.util.sizeFromShape(outShape);
  const out = new Float32Array(size);
  if (size === 0) return out;
  const strides = (shape: number[]) => {
    const padded = [...new Array(rank - shape.length).fill(1), ...shape];
    const s = new Array<number>(rank).fill(0);
    let acc = 1;
    for (let d = rank - 1; d >= 0; d--) {
      s[d] = padded[d] === 1 && outShape[d] !== 1 ? 0 : acc;
      acc *= padded[d];
    }
    return s;
  };
  const sa = strides(aShape);
  const sb = strides(bShape);
  const inner = rank ? outShape[rank - 1] : 1;
  const ia = rank ? sa[rank - 1] : 0;
  const ib = rank ? sb[rank - 1] : 0;
  const rows = size / inner;
  const coord = new Array<number>(Math.max(0, rank - 1)).fill(0);
  let baseA = 0;
  let baseB = 0;
  for (let r = 0, o = 0; r < rows; r++) {
    if (ia === 1 && ib === 1)
      for (let j = 0; j < inner; j++) out[o + j] = f(a[baseA + j], b[baseB + j]);
    else if (ia === 1 && ib === 0) {
      const y = b[baseB];
      for (let j = 0; j < inner; j++) out[o + j] = f(a[baseA + j], y);
    } else if (ia === 0 && ib === 1) {
      const x = a[baseA];
      for (let j = 0; j < inner; j++) out[o + j] = f(x, b[baseB + j]);
    } else for (let j = 0; j < inner; j++) out[o + j] = f(a[baseA + j * ia], b[baseB + j * ib]);
    o += inner;
    // advance the row coordinates (odometer over the leading dimensions)
    for (let d = rank - 2; d >= 0; d--) {
      baseA += sa[d];
      baseB += sb[d];
      if (++coord[d] < outShape[d]) break;
      baseA -= sa[d] * outShape[d];
      baseB -= sb[d] * outShape[d];
      coord[d] = 0;
    }
  }
  return out;
}

/** A float32 binary kernel with fast broadcasting; other dtypes go to tfjs's own kernel. */
function binaryKernel(name: string, f: BinaryFn): tf.KernelFunc {
  const fallback = tf.getKernel(name, 'cpu')?.kernelFunc;
  const kernel: tf.KernelFunc = (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') {
      if (!fallback || fallback === kernel)
        throw new BackendError(`${name}: no cpu kernel for ${a.dtype}`, 'KERNEL_MISSING');
      return fallback(args);
    }
    const cpu = args.backend as MathBackendCPU;
    const outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const va = cpu.data.get(a.dataId).values as Float32Array;
    const vb = cpu.data.get(b.dataId).values as Float32Array;
    return cpu.makeTensorInfo(
      outShape,
      'float32',
      broadcastInto(f, va, a.shape, vb, b.shape, outShape),
    );
  };
  return kernel;
}

/** Multiply, Add, Sub and RealDiv with fast float32 broadcasting. */
export function elementwiseKernels(): { kernelName: string; kernelFunc: tf.KernelFunc }[] {
  return [
    { kernelName: 'Multiply', kernelFunc: binaryKernel('Multiply', (x, y) => x * y) },
    { kernelName: 'Add', kernelFunc: binaryKernel('Add', (x, y) => x + y) },
    { kernelName: 'Sub', kernelFunc: binaryKernel('Sub', (x, y) => x - y) },
    { kernelName: 'RealDiv', kernelFunc: binaryKernel('RealDiv', (x, y) => x / y) },
  ];
}
