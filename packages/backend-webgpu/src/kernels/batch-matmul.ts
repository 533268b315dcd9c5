import { BackendError, DeviceLimitError, InvalidArgumentError, ShapeError, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import {
  GemmProgram,
  GemmSplitSumProgram,
  type GemmTile,
  gemmTileProblem,
  gemmTileSize,
  gemmUniforms,
} from '../gemm-program';
import { ZerosProgram } from '../programs';
import { getMatMulPrecision, splitProduct, takesSplit } from './split-matmul';

/**
 * 128×128 output tiles, 8×8 per thread, K-slices of 8 (against 33–37 TFLOP/s with K-slices of 16
 * and ≤ 30 for 64×128 and 64×64 tiles: bench/results/h200-2026-12-02/gemm-sweep-1.json), the
 * workgroups in groups of 16 tile rows, warps of 8×4 thread blocks and padded rows for scattered
 * operands: on the H200 39.8–41.8 TFLOP/s over the LLaMA-7B training shapes in every transposed
 * form (bench/results/h200-2026-12-03/speed.json); the order and the lanes gained about 1% over
 * row by row (gemm-f32-s4-1.json).
 */
export const LARGE_TILE: GemmTile = {
  tm: 8,
  tn: 8,
  wx: 16,
  wy: 16,
  bk: 8,
  group: 16,
  lanes: 'block',
};
let largeTile: GemmTile = LARGE_TILE;
let tileSet = false;

/**
 * 128×256 output tiles of 512 threads (8×8 each, 25 KiB of workgroup memory): a workgroup too
 * large for the driver to give a thread more than 128 registers, and half the workgroups of
 * LARGE_TILE. On the H200 it ran 40.2–43.8 TFLOP/s where its workgroups fill the GPU's waves as
 * well as LARGE_TILE's, against LARGE_TILE's 39.5–41.4 (bench/results/h200-2026-12-03/
 * gemm-f32-s5-2.json); where they fill them worse (2048×4096×11008: 688 workgroups, 5.2 waves of
 * 132) it lost (36.8–38.9). chooseGemm takes it where its waves are at least as full and it pads
 * the output no more than LARGE_TILE.
 */
export const WIDE_TILE: GemmTile = {
  tm: 8,
  tn: 8,
  wx: 32,
  wy: 16,
  bk: 8,
  group: 16,
  lanes: 'block',
};

/**
 * Workgroups of the large tiles that the GPU runs at once: one per streaming multiprocessor (132 on
 * the H200; WebGPU does not say, so EDKM_GEMM_SLOTS or setGemmSlots tells it for another GPU).
 */
let gemmSlots = 132;
export function setGemmSlots(n: number): void {
  if (!(Number.isInteger(n) && n >= 1))
    throw new InvalidArgumentError(`setGemmSlots(${n}): a positive integer`);
  gemmSlots = n;
}
/** Whether the device allows WIDE_TILE (512 invocations, its workgroup memory); set at init. */
let wideAllowed = false;
export function setGemmDevice(limits: {
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupStorageSize: number;
}): void {
  wideAllowed =
    gemmTileProblem(
      WIDE_TILE,
      limits.maxComputeWorkgroupStorageSize,
      limits.maxComputeInvocationsPerWorkgroup,
    ) === undefined;
}

/** The share of the workgroup slots of its waves that `tiles` workgroups fill. */
export function waveFill(tiles: number, slots = gemmSlots): number {
  return tiles / (Math.ceil(tiles / slots) * slots);
}

/**
 * The tile of large products (A/B comparisons; undefined restores LARGE_TILE). The plugin's init
 * reads EDKM_GEMM_TILE (a gemmTileName such as 8x8x16x16x8g8b).
 */
export function setGemmTile(tile?: GemmTile): void {
  if (tile) {
    const problem = gemmTileProblem(tile, 1 << 30, 1024);
    if (problem) throw new InvalidArgumentError(`setGemmTile(${JSON.stringify(tile)}): ${problem}`);
  }
  largeTile = tile ?? LARGE_TILE;
  tileSet = tile !== undefined;
}
/** 64×64 output tiles, 4×4 per thread: products with few 128×128 tiles. */
export const SMALL_TILE: GemmTile = { tm: 4, tn: 4, wx: 16, wy: 16, bk: 16 };

/**
 * On a software rasteriser (lavapipe) an unrolled 128×128 shader takes minutes to compile: there
 * the GEMM uses SMALL_TILE with its K-slice loop rolled (set by the plugin's init).
 */
let software = false;
export function setGemmSoftware(on: boolean): void {
  software = on;
}

/** Below this many workgroups of the large tile, the small tile (and then split-K) is used. */
const MIN_WORKGROUPS = 256;

export interface GemmOptions {
  transposeA?: boolean;
  transposeB?: boolean;
  /** The tile shape; chosen from the shape when absent. */
  tile?: GemmTile;
  /** Split K over this many workgroup layers (partial sums, then a fixed-order sum). */
  splits?: number;
}

/** The stock tfjs-webgpu BatchMatMul, captured before the plugin replaces it. */
const stockKernel = tf.getKernel('BatchMatMul', 'webgpu')?.kernelFunc;

/**
 * Where BatchMatMul goes: 'auto' (default) is this GEMM on hardware adapters and tfjs's kernel on
 * software ones (lavapipe compiles each new shader slowly, and the test suites there run many
 * shapes); 'gemm' and 'stock' force one (tests, comparisons).
 */
export type MatMulRoute = 'auto' | 'gemm' | 'stock';
let route: MatMulRoute = 'auto';

export function setMatMulRoute(to: MatMulRoute): void {
  if (to === 'stock' && !stockKernel)
    throw new BackendError("tfjs-webgpu's BatchMatMul kernel was not registered", 'KERNEL_MISSING');
  route = to;
}

interface Dims {
  m: number;
  n: number;
  k: number;
  batch: number;
  batchA: number;
  batchB: number;
  outShape: number[];
}

function dims(a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean): Dims {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kB = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (k !== kB)
    throw new ShapeError(
      `Error in matMul: inner shapes (${k}) and (${kB}) of Tensors with shapes ${a.shape} and ${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(
    a.shape.slice(0, -2),
    b.shape.slice(0, -2),
  );
  const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
  const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
  return {
    m,
    n,
    k,
    batchA,
    batchB,
    batch: Math.max(batchA, batchB),
    outShape: [...outer, m, n],
  };
}

/** The tile and split count for a product (the defaults of `gemm`). */
export function chooseGemm(
  d: { m: number; n: number; k: number; batch: number },
  maxBindingBytes = 2 ** 27,
  onSoftware = software,
): { tile: GemmTile; splits: number } {
  if (onSoftware) return { tile: { ...SMALL_TILE, unroll: false }, splits: 1 };
  const count = (t: GemmTile) => {
    const { bm, bn } = gemmTileSize(t);
    return d.batch * Math.ceil(d.m / bm) * Math.ceil(d.n / bn);
  };
  /** The output the tile's workgroups cover, padding included. */
  const covered = (t: GemmTile) => {
    const { bm, bn } = gemmTileSize(t);
    return Math.ceil(d.m / bm) * bm * Math.ceil(d.n / bn) * bn;
  };
  if (count(largeTile) >= MIN_WORKGROUPS) {
    const wide = count(WIDE_TILE);
    // the wide tile where it pads no more than the large one (not N = 128 of attention's
    // products per head) and its waves are as full
    if (
      !tileSet &&
      wideAllowed &&
      wide >= MIN_WORKGROUPS / 2 &&
      covered(WIDE_TILE) <= covered(largeTile) &&
      waveFill(wide) >= waveFill(count(largeTile))
    )
      return { tile: WIDE_TILE, splits: 1 };
    return { tile: largeTile, splits: 1 };
  }
  const tile = SMALL_TILE;
  const groups = count(tile);
  let splits = 1;
  // (below about a GFLOP a product costs about one dispatch's host time, and split-K's second
  // dispatch made it slower: bench/results/h200-2026-12-02/gemm-small-1.json)
  if (groups < MIN_WORKGROUPS && d.k >= 512 && 2 * d.batch * d.m * d.n * d.k >= 2 ** 30) {
    // split K into chunks of at least 256 until there are enough workgroups, within memory
    const outBytes = 4 * d.batch * d.m * d.n;
    splits = Math.min(
      Math.ceil(MIN_WORKGROUPS / groups),
      Math.floor(d.k / 256),
      Math.floor(maxBindingBytes / outBytes),
      Math.floor(65535 / d.batch),
      64,
    );
  }
  return { tile, splits: Math.max(1, splits) };
}

/**
 * out[b] = op(a)[b % batchA] · op(b)[b % batchB] in float32 on tfjs's WebGPU backend with
 * GemmProgram: a, b are [..., rows, cols]; the result is [...broadcast batch, M, N].
 */
export function gemm(
  gpu: WebGPUBackend,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  options: GemmOptions = {},
): tf.TensorInfo {
  const { transposeA = false, transposeB = false } = options;
  const d = dims(a, b, transposeA, transposeB);
  const { m, n, k, batch } = d;
  const limits = gpu.device.limits;
  const chosen = chooseGemm(d, limits.maxStorageBufferBindingSize);
  const tile = options.tile ?? chosen.tile;
  const problem = gemmTileProblem(
    tile,
    limits.maxComputeWorkgroupStorageSize,
    limits.maxComputeInvocationsPerWorkgroup,
  );
  if (problem) throw new InvalidArgumentError(`gemm: tile ${JSON.stringify(tile)}: ${problem}`);
  const { bm, bn } = gemmTileSize(tile);
  if (Math.ceil(n / bn) > limits.maxComputeWorkgroupsPerDimension)
    throw new DeviceLimitError(
      `gemm: N = ${n} needs more than the device's workgroups per dimension`,
    );
  if (m * n * batch === 0 || k === 0) {
    // nothing to sum: zeros (tfjs's empty-output short cut handles m·n·batch = 0)
    const zeros = gpu.runWebGPUProgram(new ZerosProgram([batch * m * n]), [], 'float32');
    return { dataId: zeros.dataId, shape: d.outShape, dtype: 'float32' };
  }
  let splits = Math.max(
    1,
    Math.min(
      options.splits ?? chosen.splits,
      Math.ceil(k / tile.bk),
      Math.floor(limits.maxComputeWorkgroupsPerDimension / batch),
    ),
  );
  const kChunk = Math.ceil(k / splits / tile.bk) * tile.bk;
  splits = Math.ceil(k / kChunk);
  const variant = {
    transposeA,
    transposeB,
    vecA: (transposeA ? m : k) % 4 === 0,
    vecB: (transposeB ? k : n) % 4 === 0,
    vecOut: n % 4 === 0,
    checkM: m % bm !== 0,
    checkN: n % bn !== 0,
    checkK: splits * kChunk !== k,
  };
  const a3 = {
    dataId: a.dataId,
    shape: transposeA ? [d.batchA, k, m] : [d.batchA, m, k],
    dtype: a.dtype,
  };
  const b3 = {
    dataId: b.dataId,
    shape: transposeB ? [d.batchB, n, k] : [d.batchB, k, n],
    dtype: b.dtype,
  };
  const program = new GemmProgram([splits * batch, m, n], splits * batch, tile, variant);
  const product = gpu.runWebGPUProgram(
    program,
    [a3, b3],
    'float32',
    gemmUniforms(d, kChunk, tile.bk),
  );
  if (splits === 1) return { dataId: product.dataId, shape: d.outShape, dtype: 'float32' };
  const vec = n % 4 === 0;
  const sum = new GemmSplitSumProgram([batch, m, n], splits, vec);
  const out = gpu.runWebGPUProgram(sum, [product], 'float32', [
    { type: 'int32', data: [(batch * m * n) / (vec ? 4 : 1)] },
    { type: 'int32', data: [splits] },
  ]);
  gpu.disposeData(product.dataId);
  return { dataId: out.dataId, shape: d.outShape, dtype: 'float32' };
}

/**
 * tfjs's BatchMatMul on WebGPU for float32 through `gemm` (or the split-precision product where
 * `setMatMulPrecision('split')` asks and int8 tensor cores take it); other dtypes go to tfjs's kernel.
 */
export const batchMatMul: tf.KernelFunc = (args) => {
  const { inputs, backend, attrs } = args;
  const gpu = backend as WebGPUBackend;
  const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA = false, transposeB = false } = attrs as unknown as {
    transposeA?: boolean;
    transposeB?: boolean;
  };
  const batch = Math.max(
    tf.util.sizeFromShape(a.shape.slice(0, -2)),
    tf.util.sizeFromShape(b.shape.slice(0, -2)),
  );
  if (getMatMulPrecision() === 'split' && a.dtype === 'float32' && b.dtype === 'float32') {
    const d = dims(a, b, transposeA, transposeB);
    if (takesSplit(d.m, d.n, d.k, d.batch))
      return splitProduct(gpu, a, b, transposeA, transposeB, d.outShape);
  }
  const useStock =
    route === 'stock' ||
    (route === 'auto' && software) ||
    a.dtype !== 'float32' ||
    b.dtype !== 'float32' ||
    batch > gpu.device.limits.maxComputeWorkgroupsPerDimension;
  if (useStock) {
    if (!stockKernel)
      throw new BackendError(
        "tfjs-webgpu's BatchMatMul kernel was not registered",
        'KERNEL_MISSING',
      );
    return stockKernel(args);
  }
  return gemm(gpu, a, b, { transposeA, transposeB });
};
