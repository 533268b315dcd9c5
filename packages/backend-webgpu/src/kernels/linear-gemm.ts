import type { LinearFusion, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import {
  type DecodedOperand,
  GEMM_UNIFORMS,
  type GemmTile,
  type GemmVariant,
  gemmSource,
  gemmTileName,
  gemmTileProblem,
  gemmTileSize,
  gemmUniforms,
} from '../gemm-program';
import { EdkmProgram } from '../programs';
import { chooseGemm } from './batch-matmul';
import { rmsNorm } from './rms-norm';
import type { SubgroupMode } from './subgroup-route';

/**
 * The linear kernels (PaletteMatMul, Bf16MatMul) for many rows of x (prefill, batched decoding):
 * the f32 GEMM of gemm-program.ts with its B tile decoded from the stored weight as it is staged in
 * workgroup memory (DecodedOperand: LUTs and packed indices, or bf16 pairs), so a weight row is
 * decoded once per tile of rows of x instead of walked once per 8 rows by the linear kernels; no
 * dense f32 copy of the weight exists. The output goes to the rows' columns (permuted for
 * palettized rows), plus the residual there; the prologues run before it (RMSNorm as its own kernel
 * here, SwiGLU through SiluMul in the callers).
 */
export class LinearGemmProgram extends EdkmProgram {
  shaderKey: string;
  variableNames: string[];
  variableComponents: number[];
  uniforms = GEMM_UNIFORMS;
  private readonly variant: GemmVariant;

  constructor(
    m: number,
    n: number,
    k: number,
    readonly tile: GemmTile,
    readonly decoded: DecodedOperand,
  ) {
    const { bm, bn } = gemmTileSize(tile);
    super([1, m, n], [Math.ceil(n / bn), Math.ceil(m / bm), 1], { x: [2], y: [1], z: [0] });
    this.workgroupSize = [tile.wx * tile.wy, 1, 1];
    this.variableNames =
      decoded.format === 'palette' ? ['A', 'codes', 'lut', 'rows', 'scales'] : ['A', 'w'];
    if (decoded.residual) this.variableNames.push('residual');
    this.variableComponents = [4, ...this.variableNames.slice(1).map(() => 1)];
    this.variant = {
      transposeA: false,
      transposeB: true,
      vecA: true,
      vecB: true,
      vecOut: false,
      checkM: m % bm !== 0,
      checkN: n % bn !== 0,
      checkK: k % tile.bk !== 0,
    };
    const v = this.variant;
    const format = decoded.format === 'palette' ? `p${decoded.bits}` : 'bf16';
    this.shaderKey = `edkm_linear_gemm_${gemmTileName(tile)}_${format}_${decoded.residual}_${[v.checkM, v.checkN, v.checkK].map(Number).join('')}`;
  }

  getUserCode(): string {
    return gemmSource(this.tile, this.variant, this.decoded);
  }
}

let mode: SubgroupMode = 'auto';
/**
 * Rows of x and outputs (rows × columns) from which the linear kernels take the GEMM form
 * ('auto'). On one H200 (bench/results/h200-2026-12-04/prefill-gemm-s8-11.txt) it took a 2,048-token
 * prefill of the 7B shape from 420 to 2,226 tokens/s at 3 bits and from 1,778 to 8,255 in bf16, but
 * edkm-tiny's 256-token prefill (256 × 288–768 outputs: too few tiles to fill the GPU) from
 * 29,000–49,000 down to 23,000–28,000: below 2^20 outputs the linear kernels' one workgroup per
 * weight row and 8 rows of x spreads wider.
 */
export const LINEAR_GEMM_MIN_ROWS = 64;
export const LINEAR_GEMM_MIN_OUTPUTS = 2 ** 20;

/** 'auto' (LINEAR_GEMM_MIN_ROWS / _OUTPUTS), 'on' (from 2 rows of x: tests), 'off' (A/B). */
export function setLinearGemm(m: SubgroupMode): void {
  mode = m;
}

/**
 * Whether a linear kernel takes the GEMM form for m rows of x, n outputs a row and K columns: sizes
 * by the mode, K a multiple of 4 (vec4 reads of x); palettized rows also word-aligned (cluster
 * dimension 1, K a multiple of 32) at 1–8 bits.
 */
export function useLinearGemm(
  m: number,
  n: number,
  k: number,
  palette?: { bits: number; clusterDim: number },
): boolean {
  if (mode === 'off' || k % 4 !== 0) return false;
  if (palette && (palette.clusterDim !== 1 || k % 32 !== 0 || palette.bits < 1 || palette.bits > 8))
    return false;
  if (mode === 'on') return m >= 2;
  return m >= LINEAR_GEMM_MIN_ROWS && m * n >= LINEAR_GEMM_MIN_OUTPUTS;
}

/**
 * A linear kernel in the GEMM form (the caller applied SwiGLU): x [m, K], `weights` the stored
 * weight's bindings in DecodedOperand's order, n output columns; undefined where useLinearGemm
 * says no or the device cannot run the tile (the caller takes its own shapes then).
 */
export function linearGemm(
  gpu: WebGPUBackend,
  x: tf.TensorInfo,
  weights: tf.TensorInfo[],
  n: number,
  format: { format: 'palette'; bits: number; clusterDim: number } | { format: 'bf16' },
  fusion: LinearFusion,
  g?: tf.TensorInfo,
  residual?: tf.TensorInfo,
): tf.TensorInfo | undefined {
  const [m, k] = x.shape;
  if (!useLinearGemm(m, n, k, format.format === 'palette' ? format : undefined)) return undefined;
  const { tile } = chooseGemm({ m, n, k, batch: 1 });
  const limits = gpu.device.limits;
  if (
    gemmTileProblem(
      tile,
      limits.maxComputeWorkgroupStorageSize,
      limits.maxComputeInvocationsPerWorkgroup,
    ) ||
    Math.ceil(n / gemmTileSize(tile).bn) > limits.maxComputeWorkgroupsPerDimension ||
    Math.ceil(m / gemmTileSize(tile).bm) > limits.maxComputeWorkgroupsPerDimension
  )
    return undefined;
  // the RMSNorm prologue as its own kernel
  const a =
    fusion.prologue === 'rmsnorm'
      ? (rmsNorm({
          inputs: { x, weight: g as tf.TensorInfo },
          backend: gpu,
          attrs: { eps: fusion.eps as number },
        }) as tf.TensorInfo)
      : x;
  const decoded: DecodedOperand =
    format.format === 'palette'
      ? { format: 'palette', bits: format.bits, residual: !!fusion.residual }
      : { format: 'bf16', residual: !!fusion.residual };
  const program = new LinearGemmProgram(m, n, k, tile, decoded);
  const out = gpu.runWebGPUProgram(
    program,
    [a, ...weights, ...(fusion.residual ? [residual as tf.TensorInfo] : [])],
    'float32',
    gemmUniforms(
      { m, n, k, batch: 1, batchA: 1, batchB: 1 },
      Math.ceil(k / tile.bk) * tile.bk,
      tile.bk,
    ),
  );
  if (a !== x) gpu.disposeData(a.dataId);
  return { dataId: out.dataId, shape: [m, n], dtype: 'float32' };
}
