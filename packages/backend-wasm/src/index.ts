import {
  BackendError,
  PluginKernelNames as K,
  type KernelTable,
  type PluginKernel,
  kvWriteThenAttention,
  pluginKernels,
  registerPlugin,
  tf,
} from '@edkm/core';
import { type BackendWasm, getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { adamw } from './kernels/AdamW';
import { batchMatMul, forgetTransposed, setupBatchMatMul } from './kernels/BatchMatMul';
import { bf16GatherRows } from './kernels/Bf16GatherRows';
import { bf16MatMul } from './kernels/Bf16MatMul';
import { cachedAttention } from './kernels/CachedAttention';
import { clipScale } from './kernels/ClipScale';
import { codeContract } from './kernels/CodeContract';
import { codeHistogram } from './kernels/CodeHistogram';
import { concat } from './kernels/Concat';
import { copyInto } from './kernels/CopyInto';
import { gatherAffine } from './kernels/GatherAffine';
import { gatherAffineByCode } from './kernels/GatherAffineByCode';
import { gatherByCode } from './kernels/GatherByCode';
import { gatherRows } from './kernels/GatherRows';
import { gatherV2 } from './kernels/GatherV2';
import { cast, identity } from './kernels/Identity';
import { int8MatMul } from './kernels/Int8MatMul';
import { int8QuantizeRows } from './kernels/Int8QuantizeRows';
import { int8Rescale } from './kernels/Int8Rescale';
import { kvWrite } from './kernels/KvWrite';
import { nearestEntry } from './kernels/NearestEntry';
import { paletteInt8 } from './kernels/PaletteInt8';
import { paletteMatMul } from './kernels/PaletteMatMul';
import { rmsNorm } from './kernels/RmsNorm';
import { rmsNormGrad } from './kernels/RmsNormGrad';
import { scatterAddByCode } from './kernels/ScatterAddByCode';
import { scatterAddRows } from './kernels/ScatterAddRows';
import { siluMul } from './kernels/SiluMul';
import { slice } from './kernels/Slice';
import { softContract } from './kernels/SoftContract';
import { sumSquares } from './kernels/SumSquares';
import { tableBackward } from './kernels/TableBackward';
import { tableIterate } from './kernels/TableIterate';
import { unsortedSegmentSum } from './kernels/UnsortedSegmentSum';
import { isNode, threadedBackend, wantedThreads } from './threads';

/** Every custom kernel, one file each under kernels/: leaving one out is a compile error. */
const kernels: KernelTable = {
  [K.GatherRows]: gatherRows,
  [K.ScatterAddRows]: scatterAddRows,
  [K.GatherAffine]: gatherAffine,
  [K.CodeHistogram]: codeHistogram,
  [K.GatherByCode]: gatherByCode,
  [K.ScatterAddByCode]: scatterAddByCode,
  [K.GatherAffineByCode]: gatherAffineByCode,
  [K.TableIterate]: tableIterate,
  [K.TableBackward]: tableBackward,
  [K.CodeContract]: codeContract,
  [K.SoftContract]: softContract,
  [K.PaletteMatMul]: paletteMatMul,
  [K.Bf16MatMul]: bf16MatMul,
  [K.Bf16GatherRows]: bf16GatherRows,
  [K.KvWrite]: kvWrite,
  [K.CachedAttention]: cachedAttention,
  [K.KvWriteAttention]: kvWriteThenAttention(kvWrite, cachedAttention),
  [K.RmsNorm]: rmsNorm,
  [K.RmsNormGrad]: rmsNormGrad,
  [K.SiluMul]: siluMul,
  [K.NearestEntry]: nearestEntry,
  [K.Int8MatMul]: int8MatMul,
  [K.Int8QuantizeRows]: int8QuantizeRows,
  [K.Int8Rescale]: int8Rescale,
  [K.PaletteInt8]: paletteInt8,
  [K.SumSquares]: sumSquares,
  [K.ClipScale]: clipScale,
  [K.AdamW]: adamw,
  [K.CopyInto]: copyInto,
};

/** The kernels this plugin registers for tfjs's `wasm` backend: the table above, plus the tfjs kernels it replaces or adds. */
export const wasmKernels: PluginKernel[] = pluginKernels(kernels, {
  UnsortedSegmentSum: unsortedSegmentSum,
  BatchMatMul: batchMatMul,
  GatherV2: gatherV2,
  Slice: slice,
  Concat: concat,
  Identity: identity,
  Cast: cast,
});

let simd = false;

/**
 * Byte accounting: tfjs's wasm backend reports no byte count. Every tensor's heap buffer is counted
 * once while it lives (reshapes share their buffer), as `numBytesInBackend`, which core's
 * backendBytes() reads.
 */
function withByteCount(backend: BackendWasm): BackendWasm {
  let live = 0;
  const sizes = new WeakMap<object, number>();
  const track = (dataId: object, shape: number[], dtype: tf.DataType) => {
    const bytes =
      dtype === 'string' ? 0 : tf.util.sizeFromShape(shape) * tf.util.bytesPerElement(dtype);
    sizes.set(dataId, bytes);
    live += bytes;
  };
  const move = backend.move.bind(backend);
  backend.move = (dataId, values, shape, dtype, refCount) => {
    move(dataId, values, shape, dtype, refCount);
    track(dataId, shape, dtype);
  };
  const makeOutput = backend.makeOutput.bind(backend);
  backend.makeOutput = (shape, dtype, memoryOffset, values) => {
    const out = makeOutput(shape, dtype, memoryOffset, values);
    if (memoryOffset != null) track(out.dataId, shape, dtype); // the write() path went through move()
    return out;
  };
  const disposeData = backend.disposeData.bind(backend);
  backend.disposeData = (dataId, force) => {
    const freed = disposeData(dataId, force);
    if (!backend.dataIdMap.has(dataId)) {
      forgetTransposed(backend, dataId);
      live -= sizes.get(dataId) ?? 0;
      sizes.delete(dataId);
    }
    return freed;
  };
  (backend as { memory: () => object }).memory = () => ({
    unreliable: false,
    numBytesInBackend: live,
  });
  return backend;
}

/** Why the threaded build is not in use under Node (undefined when it is, or one thread was asked for). */
let threadNote: string | undefined;

async function init(): Promise<boolean> {
  if (typeof WebAssembly !== 'object') throw new BackendError('this runtime has no WebAssembly');
  const factory = tf.findBackendFactory('wasm');
  if (!factory)
    throw new BackendError("@tensorflow/tfjs-backend-wasm did not register its 'wasm' backend");
  simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) as boolean;
  // under Node tfjs loads its single-threaded build; the threaded one is loaded here instead
  const threads = isNode() && simd ? await wantedThreads() : 1;
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    async () => {
      let threaded: BackendWasm | undefined;
      if (threads > 1) {
        try {
          threaded = await threadedBackend(threads);
        } catch (err) {
          threadNote = `threaded build not loaded: ${(err as Error).message}`;
        }
      }
      const backend = withByteCount(threaded ?? ((await factory()) as BackendWasm));
      setupBatchMatMul(backend);
      return backend;
    },
    2,
  );
  return true;
}

registerPlugin({
  name: 'wasm',
  tfjsBackend: 'wasm',
  // above the cpu plugin (plain JavaScript): 'auto' takes wasm when no real GPU starts
  priority: 1.5,
  init,
  kernels: wasmKernels,
  describe: () =>
    `tfjs wasm (XNNPACK${simd ? ', SIMD' : ', no SIMD'}, ${getThreadsCount()} thread${getThreadsCount() === 1 ? '' : 's'}${threadNote ? `; ${threadNote}` : ''})`,
});
