import '@tensorflow/tfjs-backend-cpu';
import {
  type CodeAttrs,
  DecodeKernelNames,
  KernelNames,
  LinearKernelNames,
  type ScatterAddRowsAttrs,
  type SoftContractAttrs,
  type TableBackwardAttrs,
  type TableIterateKernelAttrs,
  TableKernelNames,
  fromHalfBits,
  registerPlugin,
  tableReference,
  tf,
  toHalfBits,
} from '@edkm/core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { bf16GatherRows, bf16MatMul } from './bf16-matmul';
import { cachedAttention } from './cached-attention';
import { elementwiseKernels } from './elementwise';
import { kvWrite } from './kv-write';
import { batchMatMul } from './matmul';
import { paletteMatMul } from './palette-matmul';
import { rmsNorm } from './rms-norm';
import { siluMul } from './silu-mul';
import { trainKernels } from './train';

function values(backend: MathBackendCPU, t: tf.TensorInfo): tf.backend_util.TypedArray {
  return backend.data.get(t.dataId).values as tf.backend_util.TypedArray;
}

const gatherRows: tf.KernelFunc = ({ inputs, backend }) => {
  const cpu = backend as MathBackendCPU;
  const { table, indices } = inputs as { table: tf.TensorInfo; indices: tf.TensorInfo };
  const [u, k] = table.shape;
  const n = indices.shape[0];
  const src = values(cpu, table) as Float32Array;
  const idx = values(cpu, indices) as Int32Array;
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    const row = idx[i];
    if (row < 0 || row >= u) continue;
    if (k === 1) out[i] = src[row];
    else out.set(src.subarray(row * k, row * k + k), i * k);
  }
  return cpu.makeTensorInfo([n, k], 'float32', out);
};

const scatterAddRows: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { values: vals, indices } = inputs as { values: tf.TensorInfo; indices: tf.TensorInfo };
  const { numRows } = attrs as unknown as ScatterAddRowsAttrs;
  const [n, k] = vals.shape;
  const src = values(cpu, vals) as Float32Array;
  const idx = values(cpu, indices) as Int32Array;
  // accumulate in float64 so the result does not depend on summation order
  const acc = new Float64Array(numRows * k);
  for (let i = 0; i < n; i++) {
    const row = idx[i];
    if (row < 0 || row >= numRows) continue;
    const base = row * k;
    const from = i * k;
    for (let j = 0; j < k; j++) acc[base + j] += src[from + j];
  }
  return cpu.makeTensorInfo([numRows, k], 'float32', Float32Array.from(acc));
};

const gatherAffine: tf.KernelFunc = ({ inputs, backend }) => {
  const cpu = backend as MathBackendCPU;
  const { table, indices, x } = inputs as {
    table: tf.TensorInfo;
    indices: tf.TensorInfo;
    x: tf.TensorInfo;
  };
  const u = table.shape[0];
  const coef = values(cpu, table) as Float32Array;
  const idx = values(cpu, indices) as Int32Array;
  const src = values(cpu, x) as Float32Array;
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const row = idx[i];
    if (row >= 0 && row < u) out[i] = src[i] * coef[2 * row] + coef[2 * row + 1];
  }
  return cpu.makeTensorInfo([src.length], 'float32', out);
};

function codesOf(cpu: MathBackendCPU, x: tf.TensorInfo, attrs: unknown): Uint16Array {
  return toHalfBits(values(cpu, x) as Float32Array, (attrs as CodeAttrs).dtype);
}

const codeHistogram: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const codes = codesOf(cpu, (inputs as { x: tf.TensorInfo }).x, attrs);
  const counts = new Int32Array(65536);
  for (let i = 0; i < codes.length; i++) counts[codes[i]]++;
  return cpu.makeTensorInfo([65536], 'int32', counts);
};

const gatherByCode: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { table, x } = inputs as { table: tf.TensorInfo; x: tf.TensorInfo };
  const codes = codesOf(cpu, x, attrs);
  const k = table.shape[1];
  const src = values(cpu, table) as Float32Array;
  const out = new Float32Array(codes.length * k);
  for (let i = 0; i < codes.length; i++)
    for (let j = 0; j < k; j++) out[i * k + j] = src[codes[i] * k + j];
  return cpu.makeTensorInfo([codes.length, k], 'float32', out);
};

const scatterAddByCode: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { values: vals, x } = inputs as { values: tf.TensorInfo; x: tf.TensorInfo };
  const codes = codesOf(cpu, x, attrs);
  const k = vals.shape[1];
  const src = values(cpu, vals) as Float32Array;
  const acc = new Float64Array(65536 * k);
  for (let i = 0; i < codes.length; i++)
    for (let j = 0; j < k; j++) acc[codes[i] * k + j] += src[i * k + j];
  return cpu.makeTensorInfo([65536, k], 'float32', Float32Array.from(acc));
};

const gatherAffineByCode: tf.KernelFunc = ({ inputs, backend, attrs }) => {
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

const tableIterate: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { points, counts, c0 } = inputs as Record<string, tf.TensorInfo>;
  const out = tableReference.iterateAll(
    values(cpu, points) as Float32Array,
    values(cpu, counts) as Float32Array,
    values(cpu, c0) as Float32Array,
    attrs as unknown as TableIterateKernelAttrs,
  );
  return cpu.makeTensorInfo([out.length], 'float32', out);
};

const tableBackward: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { seed, points, counts, centroids, steps } = inputs as Record<string, tf.TensorInfo>;
  const k = centroids.shape[1];
  const rows = steps ? values(cpu, steps)[0] + 1 : centroids.shape[0];
  const out = tableReference.backward(
    values(cpu, seed) as Float32Array,
    values(cpu, points) as Float32Array,
    values(cpu, counts) as Float32Array,
    (values(cpu, centroids) as Float32Array).subarray(0, rows * k),
    centroids.shape[1],
    (attrs as unknown as TableBackwardAttrs).tau,
  );
  return cpu.makeTensorInfo([points.shape[0], 4], 'float32', out);
};

const codeContract: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { table, codeToRow, x, g } = inputs as Record<string, tf.TensorInfo>;
  const out = tableReference.codeContract(
    values(cpu, table) as Float32Array,
    table.shape[1],
    values(cpu, codeToRow) as Int32Array,
    codesOf(cpu, x, attrs),
    values(cpu, g) as Float32Array,
  );
  return cpu.makeTensorInfo([table.shape[1]], 'float32', out);
};

/**
 * The soft-contraction seed. Every term depends on a weight only through its 16-bit code, so the
 * upstream gradient is first summed per code (O(N), float64) and the attention is computed once
 * per present code (≤ 65,536 × K), not once per weight as the per-weight reference does.
 */
const softContract: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { x, g, centroids } = inputs as Record<string, tf.TensorInfo>;
  const { dtype, tau } = attrs as unknown as SoftContractAttrs;
  const k = centroids.shape[1];
  const codes = codesOf(cpu, x, attrs);
  const up = values(cpu, g) as Float32Array;
  const gByCode = new Float64Array(65536);
  const present = new Uint8Array(65536);
  for (let i = 0; i < codes.length; i++) {
    gByCode[codes[i]] += up[i];
    present[codes[i]] = 1;
  }
  const presentCodes: number[] = [];
  for (let c = 0; c < 65536; c++) if (present[c]) presentCodes.push(c);
  const codeValues = fromHalfBits(Uint16Array.from(presentCodes), dtype);
  const out = tableReference.softContract(
    codeValues,
    Float64Array.from(presentCodes, (c) => gByCode[c]),
    values(cpu, centroids) as Float32Array,
    k,
    tau,
  );
  return cpu.makeTensorInfo([2 * k], 'float32', out);
};

/** The kernels this plugin registers, exported so that tests (and other CPU-like backends) can reuse them. */
/**
 * tfjs's own cpu UnsortedSegmentSum (the gradient of every gather, e.g. an embedding lookup)
 * loops over the segments and sums a masked copy of the whole input for each: O(segments × N).
 * This one adds each row into its segment once, in input order (the same float32 sums): O(N).
 */
const unsortedSegmentSum: tf.KernelFunc = ({ inputs, backend, attrs }) => {
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

export const cpuKernels = [
  { kernelName: KernelNames.GatherRows, kernelFunc: gatherRows },
  { kernelName: KernelNames.ScatterAddRows, kernelFunc: scatterAddRows },
  { kernelName: KernelNames.GatherAffine, kernelFunc: gatherAffine },
  { kernelName: KernelNames.CodeHistogram, kernelFunc: codeHistogram },
  { kernelName: KernelNames.GatherByCode, kernelFunc: gatherByCode },
  { kernelName: KernelNames.ScatterAddByCode, kernelFunc: scatterAddByCode },
  { kernelName: KernelNames.GatherAffineByCode, kernelFunc: gatherAffineByCode },
  { kernelName: TableKernelNames.TableBackward, kernelFunc: tableBackward },
  { kernelName: TableKernelNames.TableIterate, kernelFunc: tableIterate },
  { kernelName: TableKernelNames.CodeContract, kernelFunc: codeContract },
  { kernelName: TableKernelNames.SoftContract, kernelFunc: softContract },
  { kernelName: LinearKernelNames.PaletteMatMul, kernelFunc: paletteMatMul },
  { kernelName: LinearKernelNames.Bf16MatMul, kernelFunc: bf16MatMul },
  { kernelName: LinearKernelNames.Bf16GatherRows, kernelFunc: bf16GatherRows },
  { kernelName: DecodeKernelNames.KvWrite, kernelFunc: kvWrite },
  { kernelName: DecodeKernelNames.CachedAttention, kernelFunc: cachedAttention },
  ...trainKernels,
  { kernelName: DecodeKernelNames.RmsNorm, kernelFunc: rmsNorm },
  { kernelName: DecodeKernelNames.SiluMul, kernelFunc: siluMul },
  { kernelName: 'UnsortedSegmentSum', kernelFunc: unsortedSegmentSum },
  { kernelName: 'BatchMatMul', kernelFunc: batchMatMul },
  ...elementwiseKernels(),
];

/**
 * tfjs's cpu backend with real byte accounting: tfjs counts the bytes of every tensor object, so a
 * reshape or a clone (which share one buffer) counts twice; this counts each live buffer once and
 * reports it as `numBytesInBackend` (core's backendBytes() reads it). Minus tfjs's one-time
 * console advert for tfjs-node (not an option here).
 */
class CountingCPUBackend extends MathBackendCPU {
  private liveBytes = 0;
  private readonly sizes = new WeakMap<object, number>();

  constructor() {
    super();
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  override write(
    values: tf.backend_util.BackendValues,
    shape: number[],
    dtype: tf.DataType,
  ): tf.DataId {
    const dataId = super.write(values, shape, dtype);
    this.track(dataId, values);
    return dataId;
  }

  override move(
    dataId: tf.DataId,
    values: tf.backend_util.BackendValues,
    shape: number[],
    dtype: tf.DataType,
    refCount: number,
  ): void {
    this.untrack(dataId);
    super.move(dataId, values, shape, dtype, refCount);
    this.track(dataId, values);
  }

  override disposeData(dataId: tf.DataId, force = false): boolean {
    const freed = super.disposeData(dataId, force);
    if (!this.data.has(dataId)) this.untrack(dataId);
    return freed;
  }

  override memory() {
    return { ...super.memory(), numBytesInBackend: this.liveBytes };
  }

  private track(dataId: tf.DataId, values: tf.backend_util.BackendValues): void {
    const bytes = ArrayBuffer.isView(values) ? values.byteLength : 0;
    this.sizes.set(dataId, bytes);
    this.liveBytes += bytes;
  }

  private untrack(dataId: tf.DataId): void {
    this.liveBytes -= this.sizes.get(dataId) ?? 0;
    this.sizes.delete(dataId);
  }
}

function init(): boolean {
  if (tf.findBackendFactory('cpu')) tf.removeBackend('cpu');
  tf.registerBackend('cpu', () => new CountingCPUBackend(), 1);
  return true;
}

registerPlugin({
  name: 'cpu',
  tfjsBackend: 'cpu',
  priority: 1,
  init,
  kernels: cpuKernels,
  describe: () => 'tfjs cpu (plain JavaScript)',
});
