import type { DecodeAttrs, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { TFJS_LINEAR_GROUP, linearGroups } from '../grid';
import { EdkmProgram } from '../programs';
import { subgroupAttention, useSubgroupAttention } from './cached-attention-subgroup';
import { positionOf, ropeFunction } from './kv-write';

const WG = 64;
/** Workgroups the attention aims for before it splits the positions (flash-decoding). */
const TARGET_WORKGROUPS = 256;

/**
 * DecodeKernelNames.CachedAttention: one workgroup per (new position, query head, split of the
 * cached positions). The roped query waits in workgroup memory; keys go by in blocks of 64 (one
 * score per thread), with the running maximum and sum of an online softmax; each thread
 * accumulates ⌈D/64⌉ output dimensions (with D a multiple of 4: keys and values read as vec4s,
 * a thread's key as D/4 of them and, in the value pass, thread i < D/4 taking dims 4i..4i+3 — a
 * quarter of the load instructions of reading them as floats). Only the slots up to the position are read: the loop bound
 * is a uniform, not a shape. With one split the workgroup writes the output; with several (few
 * rows and heads, a long cache: batch-1 decoding would otherwise run one workgroup per head) each
 * writes its unnormalised partial (max, sum, D values) and CachedAttentionCombineProgram merges
 * them.
 */
export class CachedAttentionProgram extends EdkmProgram {
  override workgroupSize: [number, number, number] = [WG, 1, 1];
  variableNames = ['qkv', 'cache', 'rope', 'starts'];
  uniforms =
    'b : i32, t : i32, h : i32, kv : i32, l : i32, d : i32, pos : i32, scale : f32, splits : i32, span : i32,';
  shaderKey: string;
  constructor(
    rows: number,
    heads: number,
    private readonly d: number,
    private readonly splits: number,
    private readonly devicePosition = false,
  ) {
    super(
      splits > 1 ? [rows * heads * splits * (d + 2)] : [rows, heads * d],
      linearGroups(rows * heads * splits, 'EdkmCachedAttention'),
    );
    if (devicePosition) this.variableNames.push('position');
    // keys and values as vec4 when D allows: a quarter of the load instructions, and the value
    // pass reads each cached row as D/4 neighbouring vec4s
    if (d % 4 === 0) this.variableComponents = [1, 4, 1, 1, ...(devicePosition ? [1] : [])];
    this.shaderKey = `edkm_cached_attention_${d}_${splits > 1 ? 'partial' : 'whole'}_${devicePosition}`;
  }
  variableComponents?: number[];
  getUserCode(): string {
    // with D a multiple of 4 the query, keys and values go as vec4s (n of them a row): thread j
    // reads its key as n vec4s, and in the value pass thread i (< n) accumulates dims 4i..4i+3
    const vec = this.d % 4 === 0;
    const n = vec ? this.d / 4 : this.d;
    const type = vec ? 'vec4<f32>' : 'f32';
    const dp = Math.ceil(n / WG);
    const each = (f: (r: number) => string) =>
      Array.from({ length: dp }, (_, r) => f(r)).join('\n');
    const rope = (e: string) => `edkmRope(row + hq * D, ${e}, p)`;
    const query = vec
      ? `vec4<f32>(${[0, 1, 2, 3].map((c) => rope(`4 * i + ${c}`)).join(', ')})`
      : rope('i');
    const score = vec ? 'dot(qS[i], cache[at + i])' : 'qS[i] * cache[at + i]';
    // output element of thread tid's r-th value slot (vec: its 4 dims) at base `at`, scaled
    const put = (r: number, at: string, scale: string) => {
      const i = `(tid + ${r * WG})`;
      const body = vec
        ? [0, 1, 2, 3]
            .map((c) => `setOutputAtIndex(${at} + 4 * ${i} + ${c}, o${r}[${c}]${scale});`)
            .join(' ')
        : `setOutputAtIndex(${at} + ${i}, o${r}${scale});`;
      return `if (${i} < ${n}) { ${body} }`;
    };
    const write =
      this.splits > 1
        ? `
        let at = wgi * (D + 2);
        if (tid == 0) {
          setOutputAtIndex(at, m);
          setOutputAtIndex(at + 1, l);
        }
        ${each((r) => put(r, 'at + 2', ''))}`
        : `
        let inv = select(0.0, 1.0 / l, l > 0.0);
        let to = bt * uniforms.h * D + hq * D;
        ${each((r) => put(r, 'to', ' * inv'))}`;
    // the key's dot product in four independent partial sums (n a multiple of 4 as vec4s: D ≥ 16)
    const quad = n % 4 === 0;
    const scoreLoop = quad
      ? `var a0 = 0.0; var a1 = 0.0; var a2 = 0.0; var a3 = 0.0;
            for (var i = 0; i < ${n}; i = i + 4) {
              ${[0, 1, 2, 3].map((c) => `a${c} = a${c} + ${score.replace(/\[i\]/, `[i + ${c}]`).replace(/\[at \+ i\]/, `[at + i + ${c}]`)};`).join('\n              ')}
            }
            sj = (a0 + a1) + (a2 + a3);`
      : `var acc = 0.0;
            for (var i = 0; i < ${n}; i++) { acc = acc + ${score}; }
            sj = acc;`;
    // the value pass over the block's 64 slots, four at a time with their loads issued together
    // (a fixed trip count: slots past the end have probability 0 and read a clamped row); the
    // single-slot loop it replaces waited out one load latency per cached position
    const valueLoop = `for (var u = 0; u < ${WG}; u = u + 4) {
            ${[0, 1, 2, 3].map((c) => `let p${c} = sc[u + ${c}]; let at${c} = (vBase + min(j0 + u + ${c}, uniforms.l - 1)) * ${n} + tid;`).join('\n            ')}
            bs = bs + (p0 + p1) + (p2 + p3);
            ${each(
              (r) =>
                `if (tid + ${r * WG} < ${n}) {
              ${[0, 1, 2, 3].map((c) => `let v${c}_${r} = cache[at${c} + ${r * WG}];`).join(' ')}
              o${r} = o${r} + p0 * v0_${r} + p1 * v1_${r} + p2 * v2_${r} + p3 * v3_${r};
            }`,
            )}
          }`;
    return `
      ${ropeFunction()}
      var<workgroup> qS : array<${type}, ${n}>;
      var<workgroup> sc : array<f32, ${WG}>;
      var<workgroup> lenS : i32;
      var<workgroup> startS : i32;
      fn main(index : i32) {
        let tid = i32(localIndex);
        // the grid's last row may run past rows·heads·splits: those workgroups redo the last
        // one (same values written; workgroupId is not uniform to WGSL, so no early return)
        let wgi = min(${TFJS_LINEAR_GROUP}, uniforms.b * uniforms.t * uniforms.h * uniforms.splits - 1);
        let split = wgi % uniforms.splits;
        let g = wgi / uniforms.splits;
        let hq = g % uniforms.h;
        let bt = g / uniforms.h;
        let b = bt / uniforms.t;
        let t = bt - b * uniforms.t;
        let D = uniforms.d;
        let pos = ${positionOf(this.devicePosition)};
        let p = max(0, pos + t - starts[b]);
        let kvh = hq / (uniforms.h / uniforms.kv);
        let row = bt * (uniforms.h + 2 * uniforms.kv) * D;
        for (var i = tid; i < ${n}; i = i + ${WG}) { qS[i] = ${query} * uniforms.scale; }
        // this split's slots: [split·span, (split + 1)·span) within [start, len) (through
        // workgroup memory: the loop bounds must be uniform, and workgroupId is not to WGSL)
        if (tid == 0) {
          lenS = min(pos + t + 1, (split + 1) * uniforms.span);
          startS = max(starts[b], split * uniforms.span);
        }
        let len = workgroupUniformLoad(&lenS);
        let start = workgroupUniformLoad(&startS);
        let kBase = (b * uniforms.kv + kvh) * uniforms.l;
        let vBase = ((uniforms.b + b) * uniforms.kv + kvh) * uniforms.l;
        var m = -3.0e38;
        var l = 0.0;
        ${each((r) => `var o${r} = ${type}(0.0);`)}
        for (var j0 = start; j0 < len; j0 = j0 + ${WG}) {
          let j = j0 + tid;
          var sj = -3.0e38;
          if (j < len) {
            let at = (kBase + j) * ${n};
            ${scoreLoop}
          }
          sc[tid] = sj;
          workgroupBarrier();
          var bm = m;
          for (var u = 0; u < ${WG}; u++) { bm = max(bm, sc[u]); }
          let corr = exp(m - bm);
          workgroupBarrier();
          var pj = 0.0;
          if (j < len) { pj = exp(sj - bm); }
          sc[tid] = pj;
          workgroupBarrier();
          ${each((r) => `o${r} = o${r} * corr;`)}
          var bs = 0.0;
          ${valueLoop}
          l = l * corr + bs;
          m = bm;
          workgroupBarrier();
        }
        ${write}
      }`;
  }
}

/**
 * Merges the partials of a split CachedAttentionProgram: one workgroup per (position, head); the
 * splits' sums rescaled to the largest maximum, the output divided by their total.
 */
export class CachedAttentionCombineProgram extends EdkmProgram {
  override workgroupSize: [number, number, number] = [WG, 1, 1];
  variableNames = ['part'];
  uniforms = 'h : i32, d : i32,';
  shaderKey: string;
  constructor(
    rows: number,
    heads: number,
    private readonly d: number,
    private readonly splits: number,
  ) {
    super([rows, heads * d], linearGroups(rows * heads, 'EdkmCachedAttentionCombine'));
    this.shaderKey = `edkm_cached_attention_combine_${d}_${splits}`;
  }
  getUserCode(): string {
    const dp = Math.ceil(this.d / WG);
    const each = (f: (r: number) => string) =>
      Array.from({ length: dp }, (_, r) => f(r)).join('\n');
    return `
      fn main(index : i32) {
        let tid = i32(localIndex);
        let g = min(${TFJS_LINEAR_GROUP}, uniforms.outShape[0] * uniforms.h - 1);
        let D = uniforms.d;
        let stride = D + 2;
        // (the split count a constant: both loops unroll, so that their loads go out together
        // instead of one split's after the other's)
        let base = g * ${this.splits} * stride;
        var mx = -3.0e38;
        for (var s = 0; s < ${this.splits}; s++) { mx = max(mx, part[base + s * stride]); }
        var total = 0.0;
        ${each((r) => `var o${r} = 0.0;`)}
        for (var s = 0; s < ${this.splits}; s++) {
          let at = base + s * stride;
          let f = exp(part[at] - mx);
          total = total + part[at + 1] * f;
          ${each((r) => `if (tid + ${r * WG} < D) { o${r} = o${r} + part[at + 2 + tid + ${r * WG}] * f; }`)}
        }
        let inv = select(0.0, 1.0 / total, total > 0.0);
        let to = g * D + tid;
        ${each((r) => `if (tid + ${r * WG} < D) { setOutputAtIndex(to + ${r * WG}, o${r} * inv); }`)}
      }`;
  }
}

/**
 * How many splits of the cached positions: enough workgroups to fill the GPU (TARGET_WORKGROUPS),
 * no more splits than blocks of 64 slots; `span` slots each (a multiple of 64).
 */
export function attentionSplits(groups: number, slots: number): { splits: number; span: number } {
  const blocks = Math.max(1, Math.ceil(slots / WG));
  const want = Math.min(blocks, Math.max(1, Math.ceil(TARGET_WORKGROUPS / groups)));
  const span = Math.ceil(blocks / want) * WG;
  return { splits: Math.ceil((blocks * WG) / span), span };
}

/**
 * The attention's output from its kernel's `out`: as it is with one split; with several (partials:
 * max, sum, D values each) one more dispatch merges them.
 */
export function mergeSplits(
  gpu: WebGPUBackend,
  out: tf.TensorInfo,
  splits: number,
  rows: number,
  heads: number,
  d: number,
): tf.TensorInfo {
  if (splits === 1) return out;
  const int = (v: number) => ({ type: 'int32', data: [v] });
  const merged = gpu.runWebGPUProgram(
    new CachedAttentionCombineProgram(rows, heads, d, splits),
    [out],
    'float32',
    [int(heads), int(d)],
  );
  gpu.disposeData(out.dataId);
  return merged;
}

export const cachedAttention: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { qkv, cache, rope, starts, position } = inputs as Record<string, tf.TensorInfo>;
  const a = attrs as unknown as DecodeAttrs;
  const [, b, kv, l, d] = cache.shape;
  const rows = qkv.shape[0];
  const t = rows / b;
  const int = (v: number) => ({ type: 'int32', data: [v] });
  const merge = (out: tf.TensorInfo, splits: number) =>
    mergeSplits(gpu, out, splits, rows, a.heads, d);
  if (useSubgroupAttention(d)) {
    const { out, splits } = subgroupAttention(gpu, { qkv, cache, rope, starts, position }, a);
    return merge(out, splits);
  }
  // with the position on the device: the grid and uniforms are those of the whole cache, the same
  // at every step (splits past the position are empty)
  const { splits, span } = attentionSplits(rows * a.heads, position ? l : a.pos + t);
  const uniforms = [
    int(b),
    int(t),
    int(a.heads),
    int(kv),
    int(l),
    int(d),
    int(position ? 0 : a.pos),
    { type: 'float32', data: [1 / Math.sqrt(d)] },
    int(splits),
    int(span),
  ];
  const program = new CachedAttentionProgram(rows, a.heads, d, splits, !!position);
  const inputsOf = position ? [qkv, cache, rope, starts, position] : [qkv, cache, rope, starts];
  return merge(gpu.runWebGPUProgram(program, inputsOf, 'float32', uniforms), splits);
};
