import '@tensorflow/tfjs-backend-cpu';
import {
  PluginKernelNames as K,
  type KernelTable,
  kvWriteThenAttention,
  pluginKernels,
  registerPlugin,
  tf,
} from '@edkm/core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { adamw } from './kernels/adamw';
import { bf16GatherRows, bf16MatMul } from './kernels/bf16-matmul';
import { cachedAttention } from './kernels/cached-attention';
import { clipScale } from './kernels/clip-scale';
import { codeContract } from './kernels/code-contract';
import { codeHistogram } from './kernels/code-histogram';
import { copyInto } from './kernels/copy-into';
import { elementwiseKernels } from './kernels/elementwise';
import { gatherAffine } from './kernels/gather-affine';
import { gatherAffineByCode } from './kernels/gather-affine-by-code';
import { gatherByCode } from './kernels/gather-by-code';
import { gatherRows } from './kernels/gather-rows';
import { int8MatMul } from './kernels/int8-matmul';
import { int8QuantizeRows } from './kernels/int8-quantize-rows';
import { int8Rescale } from './kernels/int8-rescale';
import { kvWrite } from './kernels/kv-write';
import { batchMatMul } from './kernels/matmul';
import { nearestEntry } from './kernels/nearest-entry';
import { paletteInt8 } from './kernels/palette-int8';
import { paletteMatMul } from './kernels/palette-matmul';
import { rmsNorm } from './kernels/rms-norm';
import { rmsNormGrad } from './kernels/rms-norm-grad';
import { scatterAddByCode } from './kernels/scatter-add-by-code';
import { scatterAddRows } from './kernels/scatter-add-rows';
import { siluMul } from './kernels/silu-mul';
import { softContract } from './kernels/soft-contract';
import { sumSquares } from './kernels/sum-squares';
import { tableBackward } from './kernels/table-backward';
import { tableIterate } from './kernels/table-iterate';
import { unsortedSegmentSum } from './kernels/unsorted-segment-sum';

/** Every custom kernel, one file each under kernels/: leaving one out is a compile error. */
const kernels: KernelTable = {
  [K.GatherRows]: gatherRows,
  [K.ScatterAddRows]: scatterAddRows,
  [K.GatherAffine]: gatherAffine,
  [K.CodeHistogram]: codeHistogram,
  [K.GatherByCode]: gatherByCode,
  [K.ScatterAddByCode]: scatterAddByCode,
  [K.GatherAffineByCode]: gatherAffineByCode,
  [K.TableBackward]: tableBackward,
  [K.TableIterate]: tableIterate,
  [K.CodeContract]: codeContract,
  [K.SoftContract]: softContract,
  [K.PaletteMatMul]: paletteMatMul,
  [K.Bf16MatMul]: bf16MatMul,
  [K.Bf16GatherRows]: bf16GatherRows,
  [K.KvWrite]: kvWrite,
  [K.CachedAttention]: cachedAttention,
  [K.KvWriteAttention]: kvWriteThenAttention(kvWrite, cachedAttention),
  [K.SumSquares]: sumSquares,
  [K.ClipScale]: clipScale,
  [K.AdamW]: adamw,
  [K.CopyInto]: copyInto,
  [K.RmsNormGrad]: rmsNormGrad,
  [K.RmsNorm]: rmsNorm,
  [K.SiluMul]: siluMul,
  [K.NearestEntry]: nearestEntry,
  [K.Int8MatMul]: int8MatMul,
  [K.Int8QuantizeRows]: int8QuantizeRows,
  [K.Int8Rescale]: int8Rescale,
  [K.PaletteInt8]: paletteInt8,
};

/** The kernels this plugin registers, exported so that tests (and other CPU-like backends) can reuse them. */
export const cpuKernels = pluginKernels(kernels, {
  // tfjs kernels replaced: O(N) instead of O(segments × N), a blocked GEMM, broadcast loops
  UnsortedSegmentSum: unsortedSegmentSum,
  BatchMatMul: batchMatMul,
  ...Object.fromEntries(elementwiseKernels().map((k) => [k.kernelName, k.kernelFunc])),
});

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
