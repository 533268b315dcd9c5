import type { LinearFusion, PaletteMatMulAttrs, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { EdkmProgram } from '../programs';
import { linearGemm } from './linear-gemm';
import { paletteGemv, useGemv } from './palette-gemv';
import { PaletteRowsProgram, chunkField } from './palette-rows';
import { siluMul } from './silu-mul';

/** Threads per workgroup of the linear kernels: one workgroup reduces one weight row. */
export const LINEAR_WG = 64;
/** Rows of x each workgroup multiplies per weight row read (the M tile; more rows, more passes). */
export const LINEAR_MT = 8;

let mTileCap = LINEAR_MT;
/**
 * Caps the M tile: a software rasteriser (lavapipe's LLVM) takes minutes to compile the 8-row
 * tile, so the plugin caps it at 2 there; real drivers compile it in well under a second.
 */
export function setLinearMTileCap(cap: number): void {
  mTileCap = cap;
}

/** The M tile for m rows of x: 1, 2, 4 or 8 (few pipelines; straight-line code per tile). */
export function mTile(m: number): number {
  const t = m >= 8 ? LINEAR_MT : m >= 4 ? 4 : m >= 2 ? 2 : 1;
  return Math.min(t, mTileCap);
}

/** `line(r)` for r < mt, joined (the M tile is unrolled: scalar accumulators, no private arrays). */
export function perRow(mt: number, line: (r: number) => string): string {
  return Array.from({ length: mt }, (_, r) => line(r)).join('\n');
}

/**
 * How a linear kernel reads x under a LinearFusion prologue (see @edkm/core): `read(r, col, name)`
 * declares x row r (offset xRow{r}) at column `col` (in x's units: vec4 when xDiv is 4) as `name`
 * and gives the expression the product uses (x·g under rmsnorm, which multiplies by the row's
 * inverse RMS at the end); `width` is x's row length in those units. With `fold` (the reduce
 * shape: a workgroup's threads together read each x row exactly once per weight row), the read
 * also adds the square to ss{r}, so the RMS comes out of the product's own loop and reduction.
 */
export function linearInput(fusion: LinearFusion, xDiv: number, fold = false) {
  const rms = fusion.prologue === 'rmsnorm';
  return {
    width: `(uniforms.k / ${xDiv})`,
    read(r: number, col: string, name: string): { decl: string; value: string } {
      const square = xDiv === 4 ? `dot(${name}, ${name})` : `${name} * ${name}`;
      return {
        decl: `let ${name} = x[xRow${r} + ${col}];${rms && fold ? ` ss${r} = ss${r} + ${square};` : ''}`,
        value: rms ? `(${name} * g[${col}])` : name,
      };
    },
  };
}

/** The variables, components and uniforms a LinearFusion adds to a linear program. */
export function fusionBindings(fusion: LinearFusion, xComponents: number) {
  const names: string[] = [];
  const components: number[] = [];
  if (fusion.prologue === 'rmsnorm') {
    names.push('g');
    components.push(xComponents);
  }
  if (fusion.residual) {
    names.push('residual');
    components.push(1);
  }
  return {
    names,
    components,
    uniforms: fusion.prologue === 'rmsnorm' ? ' eps : f32,' : '',
    key: `${fusion.prologue ?? 'plain'}_${fusion.residual ? 'res' : 'nores'}`,
  };
}

/**
 * The shared part of the linear kernels: xRow{r} (offset of x row m0 + r, clamped), acc{r}, one
 * weight row s per pass, the workgroup-wide sums (uniform control flow: the barriers are outside
 * every branch) and the write of out{r} at column `col`. `stage` runs first in each pass (it may
 * fill workgroup memory declared in `shared`; a barrier follows it). With a LinearFusion: the
 * body (reading x through linearInput's fold) sums each x row's squares into ss{r}, reduced with
 * acc{r} in the same tree (no second pass over x); the residual is added at the write.
 */
export function linearShader(opts: {
  mt: number;
  xDiv: number;
  body: string;
  col: string;
  value: (r: number) => string;
  fusion?: LinearFusion;
  shared?: string;
  stage?: string;
}): string {
  const { mt, body, col, value } = opts;
  const fusion = opts.fusion ?? {};
  const rms = fusion.prologue === 'rmsnorm';
  const sums = rms ? 2 * mt : mt; // acc{r} at r, ss{r} at mt + r
  const red = (i: number | string, at: string) => `red[${i} * ${LINEAR_WG} + ${at}]`;
  const sumLine = (i: number) => `${red(i, 'tid')} = ${red(i, 'tid')} + ${red(i, 'tid + stride')};`;
  const scaled = (v: string) =>
    rms ? `(${v}) * inverseSqrt(${red(`(${mt} + tid)`, '0')} / f32(uniforms.k) + uniforms.eps)` : v;
  const written = (v: string) => (fusion.residual ? `${v} + residual[oi]` : v);
  return `
      var<workgroup> red : array<f32, ${LINEAR_WG * sums}>;
      ${opts.shared ?? ''}
      fn main(index : i32) {
        let tid = i32(localIndex);
        let m0 = i32(workgroupId.y) * ${mt};
        ${perRow(mt, (r) => `let xRow${r} = min(m0 + ${r}, uniforms.m - 1) * (uniforms.k / ${opts.xDiv});`)}
        for (var it = 0; it < uniforms.passes; it++) {
          let s = i32(workgroupId.x) + it * uniforms.grid;
          ${
            opts.stage
              ? `${opts.stage}
          workgroupBarrier();`
              : ''
          }
          ${perRow(mt, (r) => `var acc${r} = 0.0;${rms ? ` var ss${r} = 0.0;` : ''}`)}
          if (s < uniforms.n) {
            ${body}
          }
          ${perRow(mt, (r) => `${red(r, 'tid')} = acc${r};${rms ? ` ${red(mt + r, 'tid')} = ss${r};` : ''}`)}
          workgroupBarrier();
          for (var stride = ${LINEAR_WG / 2}; stride > 0; stride = stride / 2) {
            if (tid < stride) {
              ${Array.from({ length: sums }, (_, i) => sumLine(i)).join('\n              ')}
            }
            workgroupBarrier();
          }
          if (s < uniforms.n && tid < ${mt} && m0 + tid < uniforms.m) {
            let oi = (m0 + tid) * uniforms.n + ${col};
            setOutputAtIndex(oi, ${written(scaled(value(0).replace('RED', red('tid', '0'))))});
          }
          workgroupBarrier();
        }
      }`;
}

/**
 * How the linear kernels (PaletteMatMul, Bf16MatMul) are shaped. 'reduce': one workgroup per
 * weight row, its threads splitting K and summing in workgroup memory (a GPU's way: many rows in
 * flight, coalesced reads). 'serial': one invocation per weight row, looping over K alone, 64 rows
 * to a workgroup and no barriers in the loop (a CPU rasteriser's way: SwiftShader and lavapipe run
 * a workgroup's invocations as SIMD lanes and pay for every barrier and every workgroup, so the
 * reduce shape made the tiny model's 15-token prefill ~124k workgroups of mostly idle threads).
 * 'rows' (PaletteMatMul on word-aligned rows): eight weight rows to a workgroup, 32 lanes each
 * (PaletteRowsProgram). 'auto': serial on a software adapter, else rows where the rows align and
 * reduce where they do not.
 */
export type LinearRoute = 'reduce' | 'serial' | 'rows' | 'auto';
let linearRoute: LinearRoute = 'auto';
let softwareAdapter = false;
export function setLinearRoute(route: LinearRoute): void {
  linearRoute = route;
}
export function setLinearSoftware(software: boolean): void {
  softwareAdapter = software;
}
/** Whether the linear kernels take the serial shape now. */
export function serialLinear(): boolean {
  return linearRoute === 'serial' || (linearRoute === 'auto' && softwareAdapter);
}
/** Whether PaletteMatMul takes the rows shape now (for rows that start on a word). */
export function rowsLinear(): boolean {
  return linearRoute === 'rows' || (linearRoute === 'auto' && !softwareAdapter);
}

/** Rows of x per invocation of a serial linear kernel (unrolled: scalar accumulators). */
export const SERIAL_MT = 4;
export function serialMTile(m: number): number {
  return m >= 4 ? SERIAL_MT : m >= 2 ? 2 : 1;
}

/**
 * The serial linear kernels: invocation s of the grid takes weight row s for mt rows of x
 * (xRow{r}, clamped; acc{r}), runs `body` over all of K, and writes out{r} at column `col`
 * (`value` with ACC for acc{r}). With a LinearFusion: the first mt invocations of the workgroup
 * each sum one x row's squares into its inverse RMS (the one barrier), the residual is added at
 * the write.
 */
export function serialLinearShader(opts: {
  mt: number;
  xDiv: number;
  body: string;
  col: string;
  value: string;
  fusion?: LinearFusion;
}): string {
  const { mt, xDiv, body, col, value } = opts;
  const fusion = opts.fusion ?? {};
  const input = linearInput(fusion, xDiv);
  const rms = fusion.prologue === 'rmsnorm';
  const norm = rms
    ? `
        if (i32(localIndex) < ${mt}) {
          let row = min(m0 + i32(localIndex), uniforms.m - 1) * ${input.width};
          var ss = 0.0;
          for (var c = 0; c < ${input.width}; c++) {
            let v = x[row + c];
            ss = ss + ${xDiv === 4 ? 'dot(v, v)' : 'v * v'};
          }
          invs[localIndex] = inverseSqrt(ss / f32(uniforms.k) + uniforms.eps);
        }
        workgroupBarrier();`
    : '';
  const out = (r: number) => {
    const v = value.replace('ACC', `acc${r}`);
    const scaled = rms ? `(${v}) * invs[${r}]` : v;
    return fusion.residual ? `${scaled} + residual[oi]` : scaled;
  };
  return `
      ${rms ? `var<workgroup> invs : array<f32, ${mt}>;` : ''}
      fn main(index : i32) {
        let s = i32(workgroupId.x) * ${LINEAR_WG} + i32(localIndex);
        let m0 = i32(workgroupId.y) * ${mt};
        ${perRow(mt, (r) => `let xRow${r} = min(m0 + ${r}, uniforms.m - 1) * ${input.width};`)}
        ${norm}
        if (s >= uniforms.n) { return; }
        ${perRow(mt, (r) => `var acc${r} = 0.0;`)}
        ${body}
        let col = ${col};
        ${perRow(
          mt,
          (r) => `if (m0 + ${r} < uniforms.m) {
          let oi = (m0 + ${r}) * uniforms.n + col;
          setOutputAtIndex(oi, ${out(r)});
        }`,
        )}
      }`;
}

/** Dispatch of a serial linear kernel: [⌈n/64⌉, ⌈m/mt⌉]. */
export function serialGrid(n: number, m: number, mt: number): [number, number, number] {
  return [Math.ceil(n / LINEAR_WG), Math.ceil(m / mt), 1];
}

/** Dispatch of a linear kernel over n weight rows and m rows of x: [grid, ⌈m/mt⌉], `passes` rows per workgroup. */
export function linearGrid(n: number, m: number, mt: number) {
  const grid = Math.min(n, 32768);
  return {
    grid,
    passes: Math.ceil(n / grid),
    dispatch: [grid, Math.ceil(m / mt), 1] as [number, number, number],
  };
}

/**
 * y = x · Wᵀ from LUTs and packed indices (LinearKernelNames.PaletteMatMul). One workgroup per
 * stored row (and per tile of LINEAR_MT rows of x); each thread takes 32 indices at a time — `bits`
 * whole words, unpacked by shifts fixed at compile time — when every row starts on a word (K/d a
 * multiple of 32, d = 1), else one index at a time. The LUT and x are read through the cache.
 */
export class PaletteMatMulProgram extends EdkmProgram {
  override workgroupSize: [number, number, number] = [LINEAR_WG, 1, 1];
  variableNames = ['x', 'codes', 'lut', 'rows', 'scales'];
  variableComponents?: number[];
  uniforms = 'm : i32, n : i32, k : i32, grid : i32, passes : i32,';
  shaderKey: string;
  private readonly aligned: boolean;
  readonly passes: number;
  readonly grid: number;
  constructor(
    m: number,
    n: number,
    k: number,
    private readonly bits: number,
    private readonly d: number,
    private readonly mt: number,
    private readonly fusion: LinearFusion = {},
    private readonly serial = false,
  ) {
    super([m, n], serial ? serialGrid(n, m, mt) : linearGrid(n, m, mt).dispatch);
    const g = linearGrid(n, m, mt);
    this.passes = g.passes;
    this.grid = g.grid;
    this.aligned = d === 1 && k % 32 === 0;
    const extra = fusionBindings(fusion, this.aligned ? 4 : 1);
    this.variableNames.push(...extra.names);
    this.uniforms += extra.uniforms;
    if (this.aligned) this.variableComponents = [4, 1, 1, 1, 1, ...extra.components];
    this.shaderKey = `edkm_palette_matmul_${bits}_${d}_${mt}_${this.aligned}_${extra.key}_${serial ? 'serial' : 'reduce'}`;
  }

  private get input() {
    return linearInput(this.fusion, this.aligned ? 4 : 1, !this.serial);
  }

  /** The LUT as the body reads it: the reduce shape stages the row's LUT in workgroup memory. */
  private get table(): { name: string; base: string } {
    const entries = (1 << this.bits) * this.d;
    return this.serial
      ? { name: 'lut', base: `rows[2 * s + 1] * ${entries}` }
      : { name: 'lutS', base: '0' };
  }

  /**
   * The reduce shape at 1–4 bits (aligned rows) stages the LUT as pairs: entry (i₀ | i₁ << bits) =
   * (LUT[i₀], LUT[i₁]), so two neighbouring weights cost one field extraction and one lookup.
   */
  private get pairs(): boolean {
    return !this.serial && this.aligned && this.bits <= 4;
  }

  private alignedChunk(): string {
    const bits = this.bits;
    const lines: string[] = [];
    for (let w = 0; w < bits; w++) lines.push(`let cw${w} = bitcast<u32>(codes[w0 + ${w}]);`);
    if (this.pairs) {
      for (let j = 0; j < 16; j++) lines.push(`let p${j} = lutS[${chunkField(j, 2 * bits)}];`);
      for (let q = 0; q < 8; q++) lines.push(`let lv${q} = vec4<f32>(p${2 * q}, p${2 * q + 1});`);
    } else {
      for (let j = 0; j < 32; j++)
        lines.push(`let l${j} = ${this.table.name}[base + ${chunkField(j, bits)}];`);
      for (let q = 0; q < 8; q++)
        lines.push(
          `let lv${q} = vec4<f32>(l${4 * q}, l${4 * q + 1}, l${4 * q + 2}, l${4 * q + 3});`,
        );
    }
    for (let q = 0; q < 8; q++) {
      lines.push(
        perRow(this.mt, (r) => {
          const x = this.input.read(r, `c * 8 + ${q}`, `x${r}_${q}`);
          return `${x.decl} acc${r} = acc${r} + dot(${x.value}, lv${q});`;
        }),
      );
    }
    return lines.join('\n            ');
  }

  getUserCode(): string {
    const { bits, d, mt, serial } = this;
    const entries = (1 << bits) * d;
    // reduce: the workgroup's threads split K; serial: one invocation walks all of it
    const [from, step] = serial ? ['0', '1'] : ['tid', `${LINEAR_WG}`];
    const body = this.aligned
      ? `
          let base = ${this.table.base};
          let chunks = uniforms.k / 32;
          for (var c = ${from}; c < chunks; c = c + ${step}) {
            let w0 = (s * chunks + c) * ${bits};
            ${this.alignedChunk()}
          }`
      : `
          let base = ${this.table.base};
          let v = uniforms.k / ${d};
          for (var j = ${from}; j < v; j = j + ${step}) {
            let bit = u32(s * v + j) * ${bits}u;
            let w = i32(bit >> 5u);
            let sh = bit & 31u;
            var q = bitcast<u32>(codes[w]) >> sh;
            if (sh + ${bits}u > 32u) { q = q | (bitcast<u32>(codes[w + 1]) << (32u - sh)); }
            let at = base + i32(q & ${(1 << bits) - 1}u) * ${d};
            for (var e = 0; e < ${d}; e++) {
              let l = ${this.table.name}[at + e];
              ${perRow(mt, (r) => {
                const x = this.input.read(r, `j * ${d} + e`, `x${r}`);
                return `${x.decl} acc${r} = acc${r} + ${x.value} * l;`;
              })}
            }
          }`;
    const xDiv = this.aligned ? 4 : 1;
    const { fusion } = this;
    if (serial) {
      const value = 'scales[s] * ACC';
      return serialLinearShader({ mt, xDiv, body, col: 'rows[2 * s]', value, fusion });
    }
    const value = () => 'scales[s] * RED';
    // the row's LUT (its group's) in workgroup memory, as pairs where pairs pays (see `pairs`)
    const mask = (1 << bits) - 1;
    const [shared, fill] = this.pairs
      ? [
          `var<workgroup> lutS : array<vec2<f32>, ${1 << (2 * bits)}>;`,
          `for (var e = tid; e < ${1 << (2 * bits)}; e = e + ${LINEAR_WG}) {
              lutS[e] = vec2<f32>(lut[lutAt + (e & ${mask})], lut[lutAt + (e >> ${bits}u)]);
            }`,
        ]
      : [
          `var<workgroup> lutS : array<f32, ${entries}>;`,
          `for (var e = tid; e < ${entries}; e = e + ${LINEAR_WG}) { lutS[e] = lut[lutAt + e]; }`,
        ];
    const stage = `if (s < uniforms.n) {
            let lutAt = rows[2 * s + 1] * ${entries};
            ${fill}
          }`;
    return linearShader({ mt, xDiv, body, col: 'rows[2 * s]', value, fusion, shared, stage });
  }
}

export const paletteMatMul: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { x, codes, lut, rows, scales, g, residual } = inputs as Record<string, tf.TensorInfo>;
  const fusion = attrs as unknown as PaletteMatMulAttrs;
  const { bits, clusterDim } = fusion;
  const m = x.shape[0];
  const swiglu = fusion.prologue === 'swiglu';
  const k = swiglu ? x.shape[1] / 2 : x.shape[1];
  const n = rows.shape[0];
  if (useGemv(m, k, clusterDim))
    return paletteGemv(gpu, { x, codes, lut, rows, scales, g, residual }, fusion);
  // the SwiGLU prologue outside the GEMV: SiluMul first, then the plain product
  if (swiglu) return withSiluMul(paletteMatMul, { inputs, backend, attrs });
  // many rows of x (prefill): the tiled f32 GEMM, decoding the weight tile as it stages it
  const y = linearGemm(
    gpu,
    x,
    [codes, lut, rows, scales],
    n,
    { format: 'palette', bits, clusterDim },
    fusion,
    g,
    residual,
  );
  if (y) return y;
  const serial = serialLinear();
  const mt = serial ? serialMTile(m) : mTile(m);
  const program =
    !serial && rowsLinear() && clusterDim === 1 && k % 32 === 0
      ? new PaletteRowsProgram(m, n, bits, mt, fusion)
      : new PaletteMatMulProgram(m, n, k, bits, clusterDim, mt, fusion, serial);
  return gpu.runWebGPUProgram(
    program,
    [x, codes, lut, rows, scales, ...fusionInputs(fusion, g, residual)],
    'float32',
    linearUniforms(m, n, k, program, fusion),
  );
};

/** `kernel` on silu(gate) · up of x [M, 2K] (the SwiGLU prologue of kernels that cannot fuse it), its prologue cleared. */
export function withSiluMul(
  kernel: tf.KernelFunc,
  { inputs, backend, attrs }: Parameters<tf.KernelFunc>[0],
): tf.TensorInfo {
  const gpu = backend as WebGPUBackend;
  const xs = siluMul({ inputs: { gu: inputs.x }, backend, attrs: {} }) as tf.TensorInfo;
  const y = kernel({
    inputs: { ...inputs, x: xs },
    backend,
    attrs: { ...attrs, prologue: '' },
  }) as tf.TensorInfo;
  gpu.disposeData(xs.dataId);
  return y;
}

/** The inputs a LinearFusion adds, in fusionBindings' order. */
export function fusionInputs(
  fusion: LinearFusion,
  g?: tf.TensorInfo,
  residual?: tf.TensorInfo,
): tf.TensorInfo[] {
  return [
    ...(fusion.prologue === 'rmsnorm' ? [g as tf.TensorInfo] : []),
    ...(fusion.residual ? [residual as tf.TensorInfo] : []),
  ];
}

/** The uniforms of a linear program: m, n, k, grid, passes (and rmsnorm's eps). */
export function linearUniforms(
  m: number,
  n: number,
  k: number,
  program: { grid: number; passes: number },
  fusion: LinearFusion,
) {
  return [
    { type: 'int32', data: [m] },
    { type: 'int32', data: [n] },
    { type: 'int32', data: [k] },
    { type: 'int32', data: [program.grid] },
    { type: 'int32', data: [program.passes] },
    ...(fusion.prologue === 'rmsnorm' ? [{ type: 'float32', data: [fusion.eps as number] }] : []),
  ];
}
