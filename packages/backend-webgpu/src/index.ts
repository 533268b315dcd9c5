import {
  BackendError,
  DeviceLimitError,
  InvalidArgumentError,
  PluginKernelNames as K,
  type KernelTable,
  pluginKernels,
  registerPlugin,
  tf,
} from '@edkm/core';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { withBindingCheck } from './binding-check';
import { parseGemmTile } from './gemm-program';
import { capture } from './graph';
import { installHostPath, setBatchSource } from './host';
import { adamw } from './kernels/adamw';
import {
  batchMatMul,
  setGemmDevice,
  setGemmSlots,
  setGemmSoftware,
  setGemmTile,
  setMatMulRoute,
} from './kernels/batch-matmul';
import { bf16GatherRows } from './kernels/bf16-gather-rows';
import { bf16MatMul } from './kernels/bf16-matmul';
import { cachedAttention } from './kernels/cached-attention';
import { setSubgroupAttention } from './kernels/cached-attention-subgroup';
import { clipScale } from './kernels/clip-scale';
import { codeContract } from './kernels/code-contract';
import { codeHistogram } from './kernels/code-histogram';
import { copyInto } from './kernels/copy-into';
import { gatherAffine } from './kernels/gather-affine';
import { gatherAffineByCode } from './kernels/gather-affine-by-code';
import { gatherByCode } from './kernels/gather-by-code';
import { gatherRows } from './kernels/gather-rows';
import { int8FragNs, int8MatMul, setInt8Device } from './kernels/int8-matmul';
import { int8QuantizeRows } from './kernels/int8-quantize-rows';
import { int8Rescale } from './kernels/int8-rescale';
import { kvWrite } from './kernels/kv-write';
import { kvWriteAttention, setKvWriteFusion } from './kernels/kv-write-attention';
import { setLinearGemm } from './kernels/linear-gemm';
import { nearestEntry } from './kernels/nearest-entry';
import { type GemvAblation, setPaletteGemv } from './kernels/palette-gemv';
import { paletteInt8 } from './kernels/palette-int8';
import {
  paletteMatMul,
  setLinearMTileCap,
  setLinearRoute,
  setLinearSoftware,
} from './kernels/palette-matmul';
import { setPaletteLut } from './kernels/palette-rows';
import { rmsNorm } from './kernels/rms-norm';
import { rmsNormGrad } from './kernels/rms-norm-grad';
import { scatterAddByCode } from './kernels/scatter-add-by-code';
import { scatterAddRows } from './kernels/scatter-add-rows';
import { siluMul } from './kernels/silu-mul';
import { softContract } from './kernels/soft-contract';
import { setMatMulPrecision } from './kernels/split-matmul';
import { setSubgroupDevice } from './kernels/subgroup-route';
import { sumSquares } from './kernels/sum-squares';
import { tableBackward } from './kernels/table-backward';
import { tableIterate } from './kernels/table-iterate';
import { missingVulkanLoader } from './vulkan';

export { missingVulkanLoader } from './vulkan';
export { withBindingCheck } from './binding-check';

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
  [K.KvWriteAttention]: kvWriteAttention,
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

/** The table above plus tfjs's BatchMatMul (the tiled GEMM), each behind the binding-size check. */
export const webgpuKernels = pluginKernels(kernels, { BatchMatMul: batchMatMul }).map(
  ({ kernelName, kernelFunc }) => ({
    kernelName,
    kernelFunc: withBindingCheck(kernelName, kernelFunc),
  }),
);

export {
  type WebGPUHostStats,
  resetWebGPUHostStats,
  webgpuHostStats,
} from './host';
export {
  type GemmOptions,
  LARGE_TILE,
  SMALL_TILE,
  WIDE_TILE,
  chooseGemm,
  gemm,
  type MatMulRoute,
  setGemmSlots,
  setGemmTile,
  setMatMulRoute,
  waveFill,
} from './kernels/batch-matmul';
export { type GemmTile, gemmTileName, parseGemmTile } from './gemm-program';
export { type LinearRoute, setLinearRoute } from './kernels/palette-matmul';
export { type PaletteLut, setPaletteLut } from './kernels/palette-rows';
export { type GemvMode, paletteGemvWgsl, setPaletteGemv } from './kernels/palette-gemv';
export {
  LINEAR_GEMM_MIN_OUTPUTS,
  LINEAR_GEMM_MIN_ROWS,
  setLinearGemm,
} from './kernels/linear-gemm';
export { setSubgroupAttention } from './kernels/cached-attention-subgroup';
export { setKvWriteFusion } from './kernels/kv-write-attention';
export { MAX_GROUPS_PER_DIMENSION, setMaxGroupsPerDimension } from './grid';
export {
  INT8_SPLIT_SPEC,
  type Int8Route,
  int8MatMulRoute,
  int8SplitRoute,
  setInt8MatMulSpec,
  setInt8Route,
  setInt8SplitSpec,
} from './kernels/int8-matmul';
export { INT8_MATMUL_SPEC, INT8_MATMUL_SPEC_UNROBUST, type Int8KernelSpec } from './int8-wgsl';
export {
  type MatMulPrecision,
  getMatMulPrecision,
  setMatMulPrecision,
  type SplitKernel,
  setSplitKernel,
  takesSplit,
} from './kernels/split-matmul';

/** What the adapter reported once the plugin started. */
export interface WebGPUDeviceInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  features: string[];
  /** A CPU rasteriser (lavapipe/llvmpipe, SwiftShader) or the browser's fallback adapter. */
  software: boolean;
  /**
   * Subgroup matrices (tensor cores) on: `chromium-experimental-subgroup-matrix` requested
   * (EDKM_WEBGPU_UNSAFE=1 in Node), with subgroups and an i8 × i8 → i32 16×N×32 configuration.
   */
  subgroupMatrix: boolean;
  /**
   * Whether Dawn's robustness (bounds checks on every buffer access) is on: always in a browser;
   * in Node unless EDKM_WEBGPU_ROBUST=0 (or EDKM_DAWN_FLAGS) turned it off (see dawnFlags).
   */
  robust: boolean;
}

let deviceInfo: WebGPUDeviceInfo | undefined;

export function getWebGPUDeviceInfo(): WebGPUDeviceInfo | undefined {
  return deviceInfo;
}

const SUBGROUP_MATRIX = 'chromium-experimental-subgroup-matrix' as GPUFeatureName;
/** Whether EDKM_WEBGPU_ROBUST=0 or EDKM_DAWN_FLAGS turned Dawn's robustness off (Node). */
let robustnessOff = false;
const unsafeApis = () => typeof process !== 'undefined' && process.env?.EDKM_WEBGPU_UNSAFE === '1';

/**
 * Dawn's flags in Node: `given` (EDKM_DAWN_FLAGS: Dawn's own flags, space-separated, e.g.
 * `disable-dawn-features=timestamp_quantization`), with `allow_unsafe_apis` (EDKM_WEBGPU_UNSAFE=1:
 * experimental features such as subgroup matrices) and, where `robust` is false
 * (EDKM_WEBGPU_ROBUST=0), `disable_robustness` merged into one `enable-dawn-features` flag (Dawn
 * keeps one value per flag). Robustness off drops the driver's and Tint's bounds checks on every
 * buffer access: ~15% faster 7B-shaped decoding on an H200 (bench/results/h200-2026-12-04/
 * generate.json), for code you trust only — an out-of-bounds write then corrupts other buffers
 * instead of being dropped.
 */
export function dawnFlags(
  given: string,
  opts: { unsafeApis?: boolean; robust?: boolean } = {},
): string[] {
  const flags = given.split(/\s+/).filter(Boolean);
  const extra = [
    ...(opts.unsafeApis ? ['allow_unsafe_apis'] : []),
    ...(opts.robust === false ? ['disable_robustness'] : []),
  ];
  const i = flags.findIndex((f) => f.startsWith('enable-dawn-features='));
  const have = i < 0 ? [] : flags[i].slice('enable-dawn-features='.length).split(',');
  const add = extra.filter((t) => !have.includes(t));
  if (add.length === 0) return flags;
  if (i < 0) flags.push(`enable-dawn-features=${add.join(',')}`);
  else flags[i] = `enable-dawn-features=${[...have.filter(Boolean), ...add].join(',')}`;
  return flags;
}

/** navigator.gpu of a browser, or Dawn's GPU from the `webgpu` package in Node. */
async function getGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  if (!isNode) throw new BackendError('this environment has no navigator.gpu (WebGPU)');
  // without the Vulkan loader Dawn only prints a warning and finds no adapter: say why, quietly
  const missing = missingVulkanLoader();
  if (missing) throw new BackendError(missing);
  const dawn = (await import('webgpu')) as { create: (flags: string[]) => GPU; globals: object };
  Object.assign(globalThis, dawn.globals);
  const robust = envChoice('EDKM_WEBGPU_ROBUST', ['0', '1'] as const);
  const flags = dawnFlags(process.env.EDKM_DAWN_FLAGS ?? '', {
    unsafeApis: unsafeApis(),
    robust: robust !== '0',
  });
  // (the int8 GEMM takes another tile where the user turned Dawn's robustness off)
  robustnessOff = flags.some(
    (f) => f.startsWith('enable-dawn-features=') && f.includes('disable_robustness'),
  );
  const gpu = dawn.create(flags);
  if (!(globalThis as { navigator?: unknown }).navigator) {
    Object.defineProperty(globalThis, 'navigator', {
      value: { gpu },
      configurable: true,
      writable: true,
    });
  }
  return gpu;
}

/** An environment variable of Node (undefined in a browser). */
function env(name: string): string | undefined {
  return typeof process !== 'undefined' ? process.env?.[name] : undefined;
}

/** An environment variable that must be one of `allowed` (a clear error otherwise); undefined when unset. */
function envChoice<T extends string>(name: string, allowed: readonly T[]): T | undefined {
  const v = env(name);
  if (!v) return undefined;
  if (!(allowed as readonly string[]).includes(v))
    throw new InvalidArgumentError(
      `${name} must be ${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)}, got '${v}'`,
    );
  return v as T;
}

async function init(): Promise<boolean> {
  const gpu = await getGpu();
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter)
    throw new BackendError(
      'WebGPU found no adapter (no GPU, and no software Vulkan driver such as lavapipe)',
    );
  const wanted: GPUFeatureName[] = ['timestamp-query', 'shader-f16', 'subgroups' as GPUFeatureName];
  if (unsafeApis()) wanted.push(SUBGROUP_MATRIX);
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const limits = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
    },
  });
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const int8Frags = int8FragNs(info, requiredFeatures);
  deviceInfo = {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    features: requiredFeatures,
    software:
      Boolean((info as GPUAdapterInfo & { isFallbackAdapter?: boolean })?.isFallbackAdapter) ||
      /llvmpipe|lavapipe|swiftshader/i.test(
        `${info?.vendor} ${info?.architecture} ${info?.device} ${info?.description}`,
      ),
    subgroupMatrix: int8Frags.length > 0,
    robust: !robustnessOff,
  };
  setInt8Device({
    subgroupMatrix: deviceInfo.subgroupMatrix,
    fragNs: int8Frags,
    maxWorkgroupStorage: limits.maxComputeWorkgroupStorageSize,
    robust: !robustnessOff,
  });
  setLinearMTileCap(deviceInfo.software ? 2 : 8);
  setLinearSoftware(deviceInfo.software);
  setGemmSoftware(deviceInfo.software);
  setGemmDevice(limits);
  setSubgroupDevice({
    subgroups: requiredFeatures.includes('subgroups' as GPUFeatureName),
    software: deviceInfo.software,
    invocations: limits.maxComputeInvocationsPerWorkgroup,
    workgroupStorage: limits.maxComputeWorkgroupStorageSize,
    subgroupMinSize: (info as GPUAdapterInfo & { subgroupMinSize?: number })?.subgroupMinSize,
    subgroupMaxSize: (info as GPUAdapterInfo & { subgroupMaxSize?: number })?.subgroupMaxSize,
  });
  // EDKM_MATMUL_ROUTE=stock|gemm|auto: where float32 BatchMatMul goes (A/B comparisons)
  const route = envChoice('EDKM_MATMUL_ROUTE', ['auto', 'gemm', 'stock'] as const);
  if (route) setMatMulRoute(route);
  // EDKM_GEMM_TILE=8x8x16x16x8g8b (gemmTileName): the tile of large float32 products (A/B)
  const gemmTile = env('EDKM_GEMM_TILE');
  if (gemmTile) {
    const tile = parseGemmTile(gemmTile);
    if (!tile)
      throw new InvalidArgumentError(
        `EDKM_GEMM_TILE=${gemmTile}: expected TMxTNxWXxWYxBK[r][g<group>][b][n], e.g. 8x8x16x16x8g8b`,
      );
    setGemmTile(tile);
  }
  // EDKM_GEMM_SLOTS=132: workgroups of the large GEMM tiles the GPU runs at once (its SM count)
  const slots = env('EDKM_GEMM_SLOTS');
  if (slots) setGemmSlots(Number(slots));
  // EDKM_MATMUL_PRECISION=split|f32: float32 BatchMatMul on int8 tensor cores as the
  // split-precision product (needs EDKM_WEBGPU_UNSAFE=1 for the tensor cores)
  const precision = envChoice('EDKM_MATMUL_PRECISION', ['f32', 'split'] as const);
  if (precision) setMatMulPrecision(precision);
  // EDKM_LINEAR_ROUTE=reduce|rows|serial|auto: the shape of the palettized/bf16 linear kernels (A/B)
  const linear = envChoice('EDKM_LINEAR_ROUTE', ['auto', 'reduce', 'rows', 'serial'] as const);
  if (linear) setLinearRoute(linear);
  // EDKM_PALETTE_LUT=lanes|pairs: how the rows shape holds its LUTs at 1–3 bits (A/B; default lanes)
  const lut = envChoice('EDKM_PALETTE_LUT', ['pairs', 'lanes'] as const);
  if (lut) setPaletteLut(lut);
  // EDKM_PALETTE_GEMV=auto|on|off (+ EDKM_GEMV_RB, EDKM_GEMV_UNROLL, EDKM_GEMV_LUT=shuffle|shared,
  // EDKM_GEMV_PREFETCH=0|1, EDKM_GEMV_REDUCE=add|butterfly): the decode GEMV (A/B)
  const modes = ['auto', 'on', 'off'] as const;
  const gemv = envChoice('EDKM_PALETTE_GEMV', modes);
  const rb = Number(env('EDKM_GEMV_RB') ?? 0);
  const unroll = Number(env('EDKM_GEMV_UNROLL') ?? 0);
  const gemvLut = envChoice('EDKM_GEMV_LUT', ['shuffle', 'shared'] as const);
  // (options measured slower on the H200 and removed: an error rather than silently nothing)
  for (const gone of ['EDKM_GEMV_SPLIT', 'EDKM_GEMV_COALESCE', 'EDKM_GEMV_STREAMS'])
    if (env(gone))
      throw new InvalidArgumentError(
        `${gone} was removed (measured slower on the H200: src/kernels/palette-gemv.ts)`,
      );
  const prefetch = envChoice('EDKM_GEMV_PREFETCH', ['0', '1'] as const);
  const reduce = envChoice('EDKM_GEMV_REDUCE', ['add', 'butterfly'] as const);
  // EDKM_GEMV_GRID=T: persistent workgroups, T threads in all (0: a block of rows a workgroup) (A/B)
  const gridEnv = env('EDKM_GEMV_GRID');
  const grid = gridEnv === undefined ? undefined : Number(gridEnv);
  if (grid !== undefined && !(Number.isInteger(grid) && grid >= 0))
    throw new InvalidArgumentError(`EDKM_GEMV_GRID: ${gridEnv} is not a count of threads (0: off)`);
  // EDKM_GEMV_ABLATE=noload,nolut,nosum,nomath,nomask: parts of the GEMV left out (measurement only: wrong results)
  const ablate = env('EDKM_GEMV_ABLATE')?.split(',').filter(Boolean) as GemvAblation[] | undefined;
  for (const a of ablate ?? [])
    if (!['noload', 'nolut', 'nosum', 'nomath', 'nomask'].includes(a))
      throw new InvalidArgumentError(
        `EDKM_GEMV_ABLATE: ${a} is not one of noload, nolut, nosum, nomath, nomask`,
      );
  // EDKM_GEMV_FMA=0|1: a row's products as two fma chains instead of vec4 dot products (A/B)
  const gemvFma = envChoice('EDKM_GEMV_FMA', ['0', '1'] as const);
  // EDKM_GEMV_UNIFORM=0: a weight of one LUT reads its entry with every row all the same (A/B)
  const gemvUniform = envChoice('EDKM_GEMV_UNIFORM', ['0', '1'] as const);
  if (
    gemv ||
    rb ||
    unroll ||
    gemvLut ||
    prefetch ||
    ablate ||
    reduce ||
    gemvFma ||
    gemvUniform ||
    grid !== undefined
  )
    setPaletteGemv(gemv ?? 'auto', {
      rb: rb || undefined,
      unroll: unroll || undefined,
      shuffle: gemvLut ? gemvLut === 'shuffle' : undefined,
      prefetch: prefetch ? prefetch === '1' : undefined,
      ablate,
      reduce,
      grid,
      fma: gemvFma ? gemvFma === '1' : undefined,
      uniformLut: gemvUniform ? gemvUniform === '1' : undefined,
    });
  // EDKM_LINEAR_GEMM=auto|on|off: the linear kernels' GEMM form for many rows of x (A/B)
  const linearGemmMode = envChoice('EDKM_LINEAR_GEMM', modes);
  if (linearGemmMode) setLinearGemm(linearGemmMode);
  // EDKM_SUBGROUP_ATTENTION=auto|on|off: CachedAttention on subgroups (A/B); EDKM_ATTENTION_BOUNDED=0:
  // its splits read every slot, live or not (A/B); EDKM_ATTENTION_INTERLEAVE=0: each split one run
  // of slots (A/B)
  const sga = envChoice('EDKM_SUBGROUP_ATTENTION', modes);
  const attentionBound = envChoice('EDKM_ATTENTION_BOUNDED', ['0', '1'] as const);
  const interleave = envChoice('EDKM_ATTENTION_INTERLEAVE', ['0', '1'] as const);
  // EDKM_ATTENTION_WIDE=0: decoding steps split the slots over workgroups and merge (A/B)
  const wideAttention = envChoice('EDKM_ATTENTION_WIDE', ['0', '1'] as const);
  if (sga || attentionBound || interleave || wideAttention)
    setSubgroupAttention(sga ?? 'auto', {
      bounded: attentionBound !== '0',
      interleaved: interleave !== '0',
      wide: wideAttention !== '0',
    });
  // EDKM_KV_FUSE=0: a decoding step's KV write and attention as two dispatches (A/B)
  const kvFuse = envChoice('EDKM_KV_FUSE', ['0', '1'] as const);
  if (kvFuse) setKvWriteFusion(kvFuse === '1');
  // tfjs-webgpu runs small ops on the CPU through a synchronous read, which needs OffscreenCanvas
  // (absent in Node): keep every op on the GPU
  tf.env().set('WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD', 0);
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  setBatchSource(() => tf.env().getNumber('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE'));
  tf.registerBackend(
    'webgpu',
    () => {
      const backend = new WebGPUBackend(device, info);
      // EDKM_WEBGPU_HOST_CACHE=0: tfjs's own per-dispatch uniforms and bind groups (to compare)
      const env = typeof process !== 'undefined' ? process.env?.EDKM_WEBGPU_HOST_CACHE : undefined;
      installHostPath(backend, { cache: env !== '0' });
      return backend;
    },
    3,
  );
  return true;
}

registerPlugin({
  name: 'webgpu',
  tfjsBackend: 'webgpu',
  priority: 3,
  init,
  kernels: webgpuKernels,
  isSoftware: () => deviceInfo?.software ?? false,
  flush: () => {
    const gpu = tf.backend() as unknown as {
      commandEncoder: unknown;
      endComputePassEncoder(): void;
      submitQueue(): void;
    };
    if (!gpu.commandEncoder) return;
    gpu.endComputePassEncoder();
    gpu.submitQueue();
  },
  upload: (t) => {
    const gpu = tf.backend() as unknown as {
      uploadToGPU(dataId: object): void;
      commandEncoder: unknown;
      endComputePassEncoder(): void;
      submitQueue(): void;
      device: GPUDevice;
    };
    const limit = gpu.device.limits.maxStorageBufferBindingSize;
    if (t.size * 4 > limit)
      throw new DeviceLimitError(
        `a [${t.shape}] float32 tensor is ${t.size * 4} bytes, over this WebGPU device's ${limit}-byte storage-binding limit: kernels could not read it (splitting such tensors is not implemented yet)`,
      );
    gpu.uploadToGPU(t.dataId);
    // submit the staging copy so that its host-visible buffer goes back at once
    if (gpu.commandEncoder) {
      gpu.endComputePassEncoder();
      gpu.submitQueue();
    }
  },
  capture: (fn) => capture(tf.backend() as unknown as WebGPUBackend, fn),
  describe: () =>
    deviceInfo
      ? `webgpu: ${[deviceInfo.vendor, deviceInfo.architecture, deviceInfo.description || deviceInfo.device].filter(Boolean).join(' ')}`
      : 'webgpu',
});
