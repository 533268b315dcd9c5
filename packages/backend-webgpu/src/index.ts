import {
  BackendError,
  type CodeAttrs,
  DecodeKernelNames,
  KernelNames,
  LinearKernelNames,
  type ScatterAddRowsAttrs,
  type SoftContractAttrs,
  type TableBackwardAttrs,
  type TableIterateKernelAttrs,
  TableKernelNames,
  registerPlugin,
  tableIterateLayout,
  tf,
} from '@edkm/core';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { batchMatMul, setGemmSoftware, setMatMulRoute } from './batch-matmul';
import { bf16GatherRows } from './bf16-gather-rows';
import { bf16MatMul } from './bf16-matmul';
import { cachedAttention } from './cached-attention';
import { installHostPath, setBatchSource } from './host';
import { kvWrite } from './kv-write';
import { paletteMatMul, setLinearMTileCap } from './palette-matmul';
import {
  CodeContractPartialProgram,
  CodeHistogramCopiesProgram,
  ColumnSumProgram,
  GatherAffineByCodeProgram,
  GatherAffineProgram,
  GatherByCodeProgram,
  GatherByCodeVec4Program,
  GatherRowsProgram,
  HistogramMergeProgram,
  ScatterAddRowsProgram,
  SoftContractPartialProgram,
  TableBackwardProgram,
  TableIterateProgram,
  ZerosProgram,
} from './programs';
import { markWritten } from './raw';
import { rmsNorm } from './rms-norm';
import { scatterAddByCode } from './scatter-add-by-code';
import { missingVulkanLoader } from './vulkan';

export { missingVulkanLoader } from './vulkan';
import { siluMul } from './silu-mul';
import { trainKernels } from './train';

const gatherRows: tf.KernelFunc = ({ inputs, backend }) => {
  const gpu = backend as WebGPUBackend;
  const { table, indices } = inputs as { table: tf.TensorInfo; indices: tf.TensorInfo };
  const [u, k] = table.shape;
  const n = indices.shape[0];
  const program = new GatherRowsProgram([n, k]);
  return gpu.runWebGPUProgram(program, [table, indices], 'float32', [
    { type: 'int32', data: [u] },
    { type: 'int32', data: [k] },
  ]);
};

const scatterAddRows: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { values, indices } = inputs as { values: tf.TensorInfo; indices: tf.TensorInfo };
  const { numRows } = attrs as unknown as ScatterAddRowsAttrs;
  const [n, k] = values.shape;
  const output = gpu.runWebGPUProgram(new ZerosProgram([numRows, k]), [], 'float32');
  gpu.runWebGPUProgram(
    new ScatterAddRowsProgram(n, k, numRows),
    [values, indices],
    'float32',
    [
      { type: 'int32', data: [numRows] },
      { type: 'int32', data: [k] },
      { type: 'int32', data: [n] },
    ],
    output,
  );
  return output;
};

const gatherAffine: tf.KernelFunc = ({ inputs, backend }) => {
  const gpu = backend as WebGPUBackend;
  const { table, indices, x } = inputs as {
    table: tf.TensorInfo;
    indices: tf.TensorInfo;
    x: tf.TensorInfo;
  };
  return gpu.runWebGPUProgram(
    new GatherAffineProgram([x.shape[0]]),
    [table, indices, x],
    'float32',
    [{ type: 'int32', data: [table.shape[0]] }],
  );
};

const codeHistogram: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { x } = inputs as { x: tf.TensorInfo };
  const { dtype } = attrs as unknown as CodeAttrs;
  const n = x.shape[0];
  const groups = Math.max(1, Math.min(1024, Math.ceil(n / (256 * 8))));
  const copies = Math.min(32, groups);
  const parts = gpu.runWebGPUProgram(new ZerosProgram([copies * 65536]), [], 'int32');
  gpu.runWebGPUProgram(
    new CodeHistogramCopiesProgram(groups, copies, dtype),
    [x],
    'int32',
    [
      { type: 'int32', data: [n] },
      { type: 'int32', data: [groups] },
    ],
    parts,
  );
  const out = gpu.runWebGPUProgram(new HistogramMergeProgram(), [parts], 'int32', [
    { type: 'int32', data: [copies] },
  ]);
  gpu.disposeData(parts.dataId);
  return out;
};

const gatherByCode: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { table, x } = inputs as { table: tf.TensorInfo; x: tf.TensorInfo };
  const { dtype } = attrs as unknown as CodeAttrs;
  const k = table.shape[1];
  const n = x.shape[0];
  if (k === 1 && n % 4 === 0) {
    return gpu.runWebGPUProgram(new GatherByCodeVec4Program(n, dtype), [table, x], 'float32');
  }
  return gpu.runWebGPUProgram(new GatherByCodeProgram([n, k], dtype), [table, x], 'float32', [
    { type: 'int32', data: [k] },
  ]);
};

const gatherAffineByCode: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { table, x, g } = inputs as { table: tf.TensorInfo; x: tf.TensorInfo; g: tf.TensorInfo };
  const { dtype, inPlace = false } = attrs as unknown as CodeAttrs;
  const n = x.shape[0];
  const program = new GatherAffineByCodeProgram(n, dtype, inPlace, n % 4 === 0 ? 4 : 1);
  const stride = [{ type: 'int32', data: [table.shape[1]] }];
  if (!inPlace) return gpu.runWebGPUProgram(program, [table, x, g], 'float32', stride);
  // the result overwrites g's buffer and shares it: one more reference to g's data
  gpu.runWebGPUProgram(program, [table, x], 'float32', stride, g);
  markWritten(gpu, g);
  gpu.incRef(g.dataId);
  return { dataId: g.dataId, shape: [n], dtype: 'float32' };
};

const tableBackward: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { seed, points, counts, centroids, steps } = inputs as Record<string, tf.TensorInfo>;
  const [rows, k] = centroids.shape;
  if (k > 256) throw new Error('EdkmTableBackward on WebGPU supports at most 256 centroids');
  const { tau } = attrs as unknown as TableBackwardAttrs;
  return gpu.runWebGPUProgram(
    new TableBackwardProgram(points.shape[0], k, steps !== undefined),
    steps ? [seed, points, counts, centroids, steps] : [seed, points, counts, centroids],
    'float32',
    [
      { type: 'int32', data: [points.shape[0]] },
      { type: 'int32', data: [rows - 1] },
      { type: 'float32', data: [tau] },
    ],
  );
};

const tableIterate: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { points, counts, c0 } = inputs as Record<string, tf.TensorInfo>;
  const { tau, iterations, epsilon } = attrs as unknown as TableIterateKernelAttrs;
  const u = points.shape[0];
  const k = c0.shape[1];
  const { size } = tableIterateLayout(u, k, iterations);
  return gpu.runWebGPUProgram(
    new TableIterateProgram(size, k, iterations),
    [points, counts, c0],
    'float32',
    [
      { type: 'int32', data: [u] },
      { type: 'float32', data: [tau] },
      { type: 'float32', data: [epsilon] },
    ],
  );
};

const codeContract: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { table, codeToRow, x, g } = inputs as Record<string, tf.TensorInfo>;
  const { dtype } = attrs as unknown as CodeAttrs;
  const n = x.shape[0];
  const c = table.shape[1];
  const groups = Math.max(1, Math.min(2048, Math.ceil(n / (256 * 32))));
  const partials = gpu.runWebGPUProgram(
    new CodeContractPartialProgram(groups, c, dtype),
    [table, codeToRow, x, g],
    'float32',
    [
      { type: 'int32', data: [n] },
      { type: 'int32', data: [groups] },
    ],
  );
  const out = gpu.runWebGPUProgram(new ColumnSumProgram([c]), [partials], 'float32', [
    { type: 'int32', data: [groups] },
    { type: 'int32', data: [c] },
  ]);
  gpu.disposeData(partials.dataId);
  return out;
};

const softContract: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { x, g, centroids } = inputs as Record<string, tf.TensorInfo>;
  const { dtype, tau } = attrs as unknown as SoftContractAttrs;
  const n = x.shape[0];
  const k = centroids.shape[1];
  const groups = Math.max(1, Math.min(2048, Math.ceil(n / (256 * 32))));
  const partials = gpu.runWebGPUProgram(
    new SoftContractPartialProgram(groups, k, dtype),
    [x, g, centroids],
    'float32',
    [
      { type: 'int32', data: [n] },
      { type: 'int32', data: [groups] },
      { type: 'float32', data: [tau] },
    ],
  );
  const out = gpu.runWebGPUProgram(new ColumnSumProgram([2 * k]), [partials], 'float32', [
    { type: 'int32', data: [groups] },
    { type: 'int32', data: [2 * k] },
  ]);
  gpu.disposeData(partials.dataId);
  return out;
};

function binarySize(bytes: number): string {
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} B`;
}

/**
 * WebGPU binds each tensor as one storage buffer, and a binding larger than the device's
 * maxStorageBufferBindingSize fails validation without stopping tfjs (the kernel then reads and
 * writes nothing). Every project kernel checks its tensors first and says what to do instead.
 */
export function withBindingCheck(kernelName: string, kernelFunc: tf.KernelFunc): tf.KernelFunc {
  const check = (gpu: WebGPUBackend, t: tf.TensorInfo, role: string) => {
    const limit = gpu.device.limits.maxStorageBufferBindingSize;
    const bytes =
      tf.util.sizeFromShape(t.shape) * (t.dtype === 'float32' || t.dtype === 'int32' ? 4 : 1);
    if (bytes > limit)
      throw new BackendError(
        `${kernelName}: its ${role} [${t.shape}] is ${binarySize(bytes)}, over this WebGPU device's ${binarySize(limit)} storage-binding limit; palettize the weight in row groups (groupSize) small enough to fit, or use a device with a larger limit`,
        'DEVICE_LIMIT',
      );
  };
  return (args) => {
    const gpu = args.backend as WebGPUBackend;
    for (const [name, t] of Object.entries(args.inputs))
      if (t) check(gpu, t as tf.TensorInfo, `input '${name}'`);
    const out = kernelFunc(args) as tf.TensorInfo | tf.TensorInfo[];
    const outs = Array.isArray(out) ? out : [out];
    try {
      for (const o of outs) check(gpu, o, 'output');
    } catch (err) {
      for (const o of outs) gpu.disposeData(o.dataId);
      throw err;
    }
    return out;
  };
}

export const webgpuKernels = [
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
  { kernelName: 'BatchMatMul', kernelFunc: batchMatMul },
].map(({ kernelName, kernelFunc }) => ({
  kernelName,
  kernelFunc: withBindingCheck(kernelName, kernelFunc),
}));

export {
  type WebGPUHostStats,
  resetWebGPUHostStats,
  webgpuHostStats,
} from './host';
export {
  type GemmOptions,
  LARGE_TILE,
  SMALL_TILE,
  chooseGemm,
  gemm,
  type MatMulRoute,
  setMatMulRoute,
} from './batch-matmul';
export type { GemmTile } from './gemm-program';

/** What the adapter reported once the plugin started. */
export interface WebGPUDeviceInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  features: string[];
  /** A CPU rasteriser (lavapipe/llvmpipe, SwiftShader) or the browser's fallback adapter. */
  software: boolean;
}

let deviceInfo: WebGPUDeviceInfo | undefined;

export function getWebGPUDeviceInfo(): WebGPUDeviceInfo | undefined {
  return deviceInfo;
}

/** navigator.gpu of a browser, or Dawn's GPU from the `webgpu` package in Node. */
async function getGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  if (!isNode) throw new Error('this environment has no navigator.gpu (WebGPU)');
  // without the Vulkan loader Dawn only prints a warning and finds no adapter: say why, quietly
  const missing = missingVulkanLoader();
  if (missing) throw new Error(missing);
  const dawn = (await import('webgpu')) as { create: (flags: string[]) => GPU; globals: object };
  Object.assign(globalThis, dawn.globals);
  // EDKM_DAWN_FLAGS: Dawn's own flags, space-separated (e.g. for measurements,
  // `enable-dawn-features=disable_robustness`)
  const flags = (process.env.EDKM_DAWN_FLAGS ?? '').split(/\s+/).filter(Boolean);
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

async function init(): Promise<boolean> {
  const gpu = await getGpu();
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter)
    throw new Error(
      'WebGPU found no adapter (no GPU, and no software Vulkan driver such as lavapipe)',
    );
  const wanted: GPUFeatureName[] = ['timestamp-query', 'shader-f16', 'subgroups' as GPUFeatureName];
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
  };
  setLinearMTileCap(deviceInfo.software ? 2 : 8);
  setGemmSoftware(deviceInfo.software);
  // EDKM_MATMUL_ROUTE=stock|gemm|auto: where float32 BatchMatMul goes (A/B comparisons)
  const route = typeof process !== 'undefined' ? process.env?.EDKM_MATMUL_ROUTE : undefined;
  if (route) {
    if (route !== 'auto' && route !== 'gemm' && route !== 'stock')
      throw new Error(`EDKM_MATMUL_ROUTE must be auto, gemm or stock, got '${route}'`);
    setMatMulRoute(route);
  }
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
      throw new BackendError(
        `a [${t.shape}] float32 tensor is ${t.size * 4} bytes, over this WebGPU device's ${limit}-byte storage-binding limit: kernels could not read it (splitting such tensors is not implemented yet)`,
        'DEVICE_LIMIT',
      );
    gpu.uploadToGPU(t.dataId);
    // submit the staging copy so that its host-visible buffer goes back at once
    if (gpu.commandEncoder) {
      gpu.endComputePassEncoder();
      gpu.submitQueue();
    }
  },
  describe: () =>
    deviceInfo
      ? `webgpu: ${[deviceInfo.vendor, deviceInfo.architecture, deviceInfo.description || deviceInfo.device].filter(Boolean).join(' ')}`
      : 'webgpu',
});
