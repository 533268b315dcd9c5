import type { LinearFusion, PaletteMatMulAttrs, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { allocate, runRaw, uniformBlock } from '../raw';
import { chunkField } from './palette-rows';
import { type SubgroupMode, maxInvocations, subgroupKernelOn } from './subgroup-route';

/**
 * PaletteMatMul for one row of x (decoding) on a device with subgroups: the "x-stationary" shape.
 *
 * Thread c of a workgroup owns the 32 weights 32c..32c+31 of every weight row (one thread per
 * 32-column chunk of K: 128 threads at K = 4096, 352 at 11,008) and keeps x's 32 values of its
 * chunk in registers for the whole workgroup. The workgroup then walks RB weight rows: for each,
 * every thread reads its `bits` index words (the threads' words lie side by side: one coalesced
 * sweep of the row), looks its 32 entries up in the row's LUT (staged in workgroup memory: all
 * lanes of a subgroup read the same ≤ 2^bits neighbouring words, so no bank conflicts) and
 * accumulates; a subgroupAdd and one slot per subgroup replace the per-row tree and barriers of
 * the rows shape. x is read once per workgroup instead of once per weight row, so the inner loop
 * reads only index words, and U rows at a time keep U·bits loads in flight per thread.
 *
 * Why: the rows shape (PaletteRowsProgram) read 64 bytes of x (and g) per 3 bytes of indices and
 * reduced each row through five barriers; on the H200 it reached ~400 GB/s on a 7B layer's
 * gate-up product (bench/results/h200-2026-12-02/decode-ops-lanes.json).
 */
export interface GemvShape {
  /** Columns of K (a multiple of 32). */
  k: number;
  bits: number;
  /** Weight rows per workgroup. */
  rb: number;
  /** Rows whose index loads are issued together. */
  unroll: number;
  fusion: LinearFusion;
  /** 1–3 bits: the LUT staged as pairs (one 8-byte lookup per two weights). */
  pairs?: boolean;
  /** Threads per 32-column chunk: 2 halves the work and registers of a thread (1–4 bits). */
  split?: 1 | 2;
}

/** Where the GEMV runs (see SubgroupMode). */
export type GemvMode = SubgroupMode;
let gemvMode: GemvMode = 'auto';
type GemvTuning = {
  rb?: number;
  unroll?: number;
  pairs?: boolean;
  split?: 1 | 2;
};
let gemvTuning: GemvTuning = {};
/** Where the x-stationary GEMV runs ('off': decode takes the rows shape) and its tile (A/B). */
export function setPaletteGemv(mode: GemvMode, tuning: GemvTuning = {}): void {
  gemvMode = mode;
  gemvTuning = tuning;
}

/** Threads of the workgroup for K: one per 32-column chunk, rounded up to a multiple of 32. */
export function gemvThreads(k: number, split = 1): number {
  return Math.ceil(((k / 32) * split) / 32) * 32;
}

/**
 * Whether PaletteMatMul takes this kernel: one row of x, word-aligned rows (K a multiple of 32,
 * cluster dimension 1), K from 2,048 (below it the chunks leave most threads idle: the rows shape
 * is as fast and the product is host-bound anyway) up to what one workgroup can cover.
 */
export function useGemv(m: number, k: number, clusterDim: number): boolean {
  return (
    subgroupKernelOn(gemvMode) &&
    m === 1 &&
    clusterDim === 1 &&
    k % 32 === 0 &&
    k >= 2048 &&
    gemvThreads(k, gemvTuning.split ?? 1) <= maxInvocations()
  );
}

/** The tile for a product of n rows: RB rows per workgroup (at most 8 KiB of LUTs), U unrolled. */
export function gemvTile(
  n: number,
  bits: number,
): { rb: number; unroll: number; pairs: boolean; split: 1 | 2 } {
  // 16 rows, 8 at a time: the best of 16/32/64 × 2/4/8 on the H200 (QKV 34.6 µs, gate-up 52.6,
  // down 29.2; bench/results/h200-2026-12-03/decode-ops-gemv-tiles.txt)
  const unroll = gemvTuning.unroll ?? 8;
  const pairs = (gemvTuning.pairs ?? false) && bits <= 3;
  const slots = pairs ? 2 << (2 * bits) : 1 << bits; // words of LUT a row
  let rb = gemvTuning.rb ?? 16;
  rb = Math.max(unroll, Math.min(rb, Math.floor(2048 / slots)));
  rb -= rb % unroll;
  return {
    rb,
    unroll,
    pairs,
    split: gemvTuning.split ?? 1,
  };
}

/** The WGSL of the x-stationary GEMV (bindings: x, codes, lut, rows, scales, [g], [residual], y, uniforms). */
export function paletteGemvWgsl(shape: GemvShape): string {
  const { k, bits, rb, unroll, fusion } = shape;
  const pairs = shape.pairs === true;
  const per = pairs ? 1 << (2 * bits) : 1 << bits; // LUT slots a row
  const rms = fusion.prologue === 'rmsnorm';
  const split = shape.split === 2 && bits <= 4 && !pairs ? 2 : 1;
  const wgt = gemvThreads(k, split);
  const nq = 8 / split; // vec4s of x a thread holds
  const ch = k / 32;
  const entries = 1 << bits;
  const nsg = wgt / 4; // subgroup slots: any subgroup size from 4 up
  let binding = 5;
  const gBinding = rms ? binding++ : -1;
  const resBinding = fusion.residual ? binding++ : -1;
  const yBinding = binding++;
  const uBinding = binding;
  const lines: string[] = [];
  // x's 32 values of this thread's chunk (zero past K), times g under the RMSNorm prologue;
  // under SwiGLU's, silu(gate) · up from x [1, 2K] (computed once per workgroup and chunk)
  const swiglu = fusion.prologue === 'swiglu';
  const xAt = (q: number) => (split === 2 ? `c * 8u + h * 4u + ${q}u` : `c * 8u + ${q}u`);
  for (let q = 0; q < nq; q++)
    lines.push(
      swiglu
        ? `let gt${q} = x[${xAt(q)}]; var x${q} = select(vec4<f32>(0.0), gt${q} / (vec4<f32>(1.0) + exp(-gt${q})) * x[${k / 4}u + ${xAt(q)}], on);`
        : `var x${q} = select(vec4<f32>(0.0), x[${xAt(q)}], on);`,
    );
  if (rms) {
    lines.push(
      `var ss = ${Array.from({ length: nq }, (_, q) => `dot(x${q}, x${q})`).join(' + ')};`,
      'ss = subgroupAdd(ss);',
      'if (sl == 0u) { ssP[sg] = ss; }',
    );
    for (let q = 0; q < nq; q++) lines.push(`x${q} = x${q} * g[${xAt(q)}];`);
  }
  /** One group of `unroll` rows from row r (a WGSL expression): their loads, then their sums. */
  const group = (r: string): string => {
    const loads: string[] = [];
    const math: string[] = [];
    for (let u = 0; u < unroll; u++) {
      loads.push(
        `let wb${u} = min(first + ${r} + ${u}u, u.n - 1u) * ${ch * bits}u + c * ${bits}u${split === 2 ? ' + w0i' : ''};`,
      );
      if (split === 2)
        // this half's 16·bits bits start `sh` bits into word w0i of the chunk: two funnel shifts
        loads.push(
          `let a${u} = codes[wb${u}]; let b${u} = codes[wb${u} + 1u]; let d${u} = codes[wb${u} + 2u];`,
          `let cw0_${u} = select((a${u} >> sh) | (b${u} << (32u - sh)), a${u}, sh == 0u);`,
          `let cw1_${u} = select((b${u} >> sh) | (d${u} << (32u - sh)), b${u}, sh == 0u);`,
        );
      else for (let w = 0; w < bits; w++) loads.push(`let cw${w}_${u} = codes[wb${u} + ${w}u];`);
      math.push(`let lb${u} = (${r} + ${u}u) * ${per}u;`);
      const field = (j: number, width: number) =>
        chunkField(j, width)
          .replace(/cw(\d+)/g, `cw$1_${u}`)
          .replace(/^i32\((.*)\)$/, '$1');
      const terms = Array.from({ length: nq }, (_, q) => {
        if (pairs) {
          const [a, b] = [0, 1].map((i) => `lutP[lb${u} + (${field(2 * q + i, 2 * bits)})]`);
          return `dot(x${q}, vec4<f32>(${a}, ${b}))`;
        }
        const l = [0, 1, 2, 3].map((i) => `lutS[lb${u} + (${field(4 * q + i, bits)})]`);
        return `dot(x${q}, vec4<f32>(${l.join(', ')}))`;
      });
      math.push(
        `let s${u} = subgroupAdd(${terms.join(' +\n        ')});`,
        `if (sl == 0u) { part[(${r} + ${u}u) * ${nsg}u + sg] = s${u}; }`,
      );
    }
    return `{
    ${loads.join('\n    ')}
    ${math.join('\n    ')}
  }`;
  };
  // (the groups written out with constant rows, and two threads a chunk, measured no faster on the
  // H200: bench/results/h200-2026-12-03/decode-ops-call18.txt)
  const walk = `for (var r = 0u; r < ${rb}u; r = r + ${unroll}u) ${group('r')}`;
  const scaled = rms ? `t * inverseSqrt(ssSum / ${k}.0 + u.eps)` : 't';
  return `
enable subgroups;
struct U { n : u32, eps : f32, p0 : u32, p1 : u32 };
@group(0) @binding(0) var<storage, read> x : array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> codes : array<u32>;
@group(0) @binding(2) var<storage, read> lut : array<f32>;
@group(0) @binding(3) var<storage, read> rows : array<i32>;
@group(0) @binding(4) var<storage, read> scales : array<f32>;
${rms ? `@group(0) @binding(${gBinding}) var<storage, read> g : array<vec4<f32>>;` : ''}
${fusion.residual ? `@group(0) @binding(${resBinding}) var<storage, read> residual : array<f32>;` : ''}
@group(0) @binding(${yBinding}) var<storage, read_write> y : array<f32>;
@group(0) @binding(${uBinding}) var<uniform> u : U;
${pairs ? `var<workgroup> lutP : array<vec2<f32>, ${rb * per}>;` : `var<workgroup> lutS : array<f32, ${rb * per}>;`}
var<workgroup> part : array<f32, ${rb * nsg}>;
${rms ? `var<workgroup> ssP : array<f32, ${nsg}>;` : ''}
@compute @workgroup_size(${wgt})
fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(local_invocation_index) tid : u32,
        @builtin(subgroup_invocation_id) sl : u32, @builtin(subgroup_size) sgs : u32) {
  let first = wg.x * ${rb}u;
  let sg = tid / sgs;
  for (var e = tid; e < ${rb * per}u; e = e + ${wgt}u) {
    let row = min(first + e / ${per}u, u.n - 1u);
    let at = u32(rows[2u * row + 1u]) * ${entries}u;
    ${
      pairs
        ? `let j = e % ${per}u;
    lutP[e] = vec2<f32>(lut[at + (j & ${entries - 1}u)], lut[at + (j >> ${bits}u)]);`
        : `lutS[e] = lut[at + e % ${entries}u];`
    }
  }
  ${
    split === 2
      ? `let h = tid % 2u;
  let on = tid / 2u < ${ch}u;
  let c = min(tid / 2u, ${ch - 1}u);
  let sb = h * ${16 * bits}u;
  let w0i = sb / 32u;
  let sh = sb % 32u;`
      : `let on = tid < ${ch}u;
  let c = min(tid, ${ch - 1}u);`
  }
  ${lines.join('\n  ')}
  workgroupBarrier();
  ${walk}
  workgroupBarrier();
  if (tid < ${rb}u) {
    let row = first + tid;
    if (row < u.n) {
      var t = 0.0;
      for (var i = 0u; i < ${wgt}u / sgs; i = i + 1u) { t = t + part[tid * ${nsg}u + i]; }
      ${rms ? `var ssSum = 0.0;\n      for (var i = 0u; i < ${wgt}u / sgs; i = i + 1u) { ssSum = ssSum + ssP[i]; }` : ''}
      let oi = u32(rows[2u * row]);
      y[oi] = scales[row] * ${scaled}${fusion.residual ? ' + residual[oi]' : ''};
    }
  }
}`;
}

/** PaletteMatMul through the x-stationary GEMV (the caller checked useGemv). */
export function paletteGemv(
  backend: WebGPUBackend,
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
  const { x, codes, lut, rows, scales, g, residual } = inputs;
  const k = attrs.prologue === 'swiglu' ? x.shape[1] / 2 : x.shape[1];
  const n = rows.shape[0];
  const { bits } = attrs;
  const fusion: LinearFusion = {
    prologue: attrs.prologue,
    residual: attrs.residual,
    eps: attrs.eps,
  };
  const { rb, unroll, pairs, split } = gemvTile(n, bits);
  const y = allocate(backend, [1, n]);
  const tensors = [x, codes, lut, rows, scales];
  if (fusion.prologue === 'rmsnorm') tensors.push(g as tf.TensorInfo);
  if (fusion.residual) tensors.push(residual as tf.TensorInfo);
  tensors.push(y);
  runRaw(backend, {
    key: `EdkmPaletteGemv:${k}_${bits}_${rb}_${unroll}_${pairs}_${split}_${fusion.prologue ?? 'plain'}_${fusion.residual ? 'res' : 'nores'}`,
    wgsl: () => paletteGemvWgsl({ k, bits, rb, unroll, fusion, pairs, split }),
    tensors,
    uniforms: uniformBlock([
      ['u', n],
      ['f', fusion.prologue === 'rmsnorm' ? (fusion.eps as number) : 0],
    ]),
    groups: [Math.ceil(n / rb), 1, 1],
  });
  return y;
}
