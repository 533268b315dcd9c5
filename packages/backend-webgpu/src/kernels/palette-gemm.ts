import type { PaletteMatMulAttrs, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import {
  type GemmTile,
  type GemmVariant,
  type PaletteOperand,
  gemmSource,
  gemmTileName,
  gemmTileSize,
} from '../gemm-program';
import { EdkmProgram } from '../programs';
import { chooseGemm } from './batch-matmul';
import { rmsNorm } from './rms-norm';
import type { SubgroupMode } from './subgroup-route';

/**
 * PaletteMatMul for many rows of x (prefill, batched decoding): the f32 GEMM of gemm-program.ts
 * with its B tile decoded from the LUTs and packed indices as it is staged in workgroup memory
 * (PaletteOperand), so a weight row is decoded once per tile of rows of x instead of walked once
 * per 8 rows by the linear kernels; no dense copy of the weight exists. The output goes to the
 * rows' permuted columns, plus the residual there; the prologues run before it (RMSNorm as its own
 * kernel, SwiGLU through SiluMul in palette-matmul.ts).
 */
export class PaletteGemmProgram extends EdkmProgram {
  shaderKey: string;
  variableNames = ['A', 'codes', 'lut', 'rows', 'scales'];
  variableComponents = [4, 1, 1, 1, 1];
  uniforms =
    'M : i32, N : i32, K : i32, batch : i32, batchA : i32, batchB : i32, kChunk : i32, numTiles : i32,';

  constructor(
    m: number,
    n: number,
    k: number,
    readonly tile: GemmTile,
    readonly palette: PaletteOperand,
  ) {
    const { bm, bn } = gemmTileSize(tile);
    super([1, m, n], [Math.ceil(n / bn), Math.ceil(m / bm), 1], { x: [2], y: [1], z: [0] });
    this.workgroupSize = [tile.wx * tile.wy, 1, 1];
    if (palette.residual) {
      this.variableNames.push('residual');
      this.variableComponents.push(1);
    }
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
    this.shaderKey = `edkm_palette_gemm_${gemmTileName(tile)}_${palette.bits}_${palette.residual}_${[v.checkM, v.checkN, v.checkK].map(Number).join('')}`;
  }

  private readonly variant: GemmVariant;

  getUserCode(): string {
    return gemmSource(this.tile, this.variant, this.palette);
  }
}

let mode: SubgroupMode = 'auto';
/** Rows of x from which PaletteMatMul takes the GEMM form ('auto'); fewer take the linear kernels. */
export const PALETTE_GEMM_MIN_ROWS = 64;

/** 'auto' (from PALETTE_GEMM_MIN_ROWS rows of x), 'on' (from 2 rows: tests), 'off' (A/B). */
export function setPaletteGemm(m: SubgroupMode): void {
  mode = m;
}

/**
 * Whether PaletteMatMul takes the GEMM form: rows of x by the mode, word-aligned rows (cluster
 * dimension 1, K a multiple of 32), 1–8 bits.
 */
export function usePaletteGemm(m: number, k: number, bits: number, clusterDim: number): boolean {
  if (mode === 'off' || clusterDim !== 1 || k % 32 !== 0 || bits < 1 || bits > 8) return false;
  return m >= (mode === 'on' ? 2 : PALETTE_GEMM_MIN_ROWS);
}

/** PaletteMatMul in the GEMM form (the caller checked usePaletteGemm; SwiGLU already applied). */
export function paletteGemm(
  gpu: WebGPUBackend,
  inputs: {
    x: tf.TensorInfo;
    codes: tf.TensorInfo;
    lut: tf.TensorInfo;
    rows: tf.TensorInfo;
    scales: tf.TensorInfo;
    g?: tf.TensorInfo;
    residual?: tf.TensorInfo;
  },
  attrs: PaletteMatMulAttrs,
): tf.TensorInfo {
  const { codes, lut, rows, scales, g, residual } = inputs;
  const [m, k] = inputs.x.shape;
  const n = rows.shape[0];
  // the RMSNorm prologue as its own kernel
  const x =
    attrs.prologue === 'rmsnorm'
      ? (rmsNorm({
          inputs: { x: inputs.x, weight: g as tf.TensorInfo },
          backend: gpu,
          attrs: { eps: attrs.eps as number },
        }) as tf.TensorInfo)
      : inputs.x;
  const { tile } = chooseGemm({ m, n, k, batch: 1 });
  const program = new PaletteGemmProgram(m, n, k, tile, {
    bits: attrs.bits,
    residual: !!attrs.residual,
  });
  const kChunk = Math.ceil(k / tile.bk) * tile.bk;
  const out = gpu.runWebGPUProgram(
    program,
    [x, codes, lut, rows, scales, ...(attrs.residual ? [residual as tf.TensorInfo] : [])],
    'float32',
    [
      { type: 'int32', data: [m] },
      { type: 'int32', data: [n] },
      { type: 'int32', data: [k] },
      { type: 'int32', data: [1] },
      { type: 'int32', data: [1] },
      { type: 'int32', data: [1] },
      { type: 'int32', data: [kChunk] },
      { type: 'int32', data: [kChunk / tile.bk] },
    ],
  );
  if (x !== inputs.x) gpu.disposeData(x.dataId);
  return { dataId: out.dataId, shape: [m, n], dtype: 'float32' };
}
