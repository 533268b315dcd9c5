import type { DecodeAttrs, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { EdkmProgram } from '../programs';
import { ropeFunction } from './kv-write';

const WG = 64;

/**
 * DecodeKernelNames.CachedAttention: one workgroup per (new position, query head). The roped query
 * waits in workgroup memory; keys go by in blocks of 64 (one score per thread), with the running
 * maximum and sum of an online softmax; each thread accumulates ⌈D/64⌉ output dimensions. Only the
 * slots up to the position are read: the loop bound is a uniform, not a shape.
 */
export class CachedAttentionProgram extends EdkmProgram {
  override workgroupSize: [number, number, number] = [WG, 1, 1];
  variableNames = ['qkv', 'cache', 'rope', 'starts'];
  uniforms = 'b : i32, t : i32, h : i32, kv : i32, l : i32, d : i32, pos : i32, scale : f32,';
  shaderKey: string;
  constructor(
    rows: number,
    heads: number,
    private readonly d: number,
  ) {
    super([rows, heads * d], [rows * heads, 1, 1]);
    this.shaderKey = `edkm_cached_attention_${d}`;
  }
  getUserCode(): string {
    const dp = Math.ceil(this.d / WG);
    const each = (f: (r: number) => string) =>
      Array.from({ length: dp }, (_, r) => f(r)).join('\n');
    return `
      ${ropeFunction()}
      var<workgroup> qS : array<f32, ${this.d}>;
      var<workgroup> sc : array<f32, ${WG}>;
      var<workgroup> lenS : i32;
      var<workgroup> startS : i32;
      fn main(index : i32) {
        let tid = i32(localIndex);
        let g = i32(workgroupId.x);
        let hq = g % uniforms.h;
        let bt = g / uniforms.h;
        let b = bt / uniforms.t;
        let t = bt - b * uniforms.t;
        let D = uniforms.d;
        let p = max(0, uniforms.pos + t - starts[b]);
        let kvh = hq / (uniforms.h / uniforms.kv);
        let row = bt * (uniforms.h + 2 * uniforms.kv) * D;
        for (var i = tid; i < D; i = i + ${WG}) { qS[i] = edkmRope(row + hq * D, i, p) * uniforms.scale; }
        if (tid == 0) {
          lenS = uniforms.pos + t + 1;
          startS = starts[b];
        }
        let len = workgroupUniformLoad(&lenS);
        let start = workgroupUniformLoad(&startS);
        let kBase = (b * uniforms.kv + kvh) * uniforms.l;
        let vBase = ((uniforms.b + b) * uniforms.kv + kvh) * uniforms.l;
        var m = -3.0e38;
        var l = 0.0;
        ${each((r) => `var o${r} = 0.0;`)}
        for (var j0 = start; j0 < len; j0 = j0 + ${WG}) {
          let j = j0 + tid;
          var sj = -3.0e38;
          if (j < len) {
            let at = (kBase + j) * D;
            var acc = 0.0;
            for (var i = 0; i < D; i++) { acc = acc + qS[i] * cache[at + i]; }
            sj = acc;
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
          let count = min(${WG}, len - j0);
          for (var u = 0; u < count; u++) {
            let pu = sc[u];
            bs = bs + pu;
            let at = (vBase + j0 + u) * D + tid;
            ${each((r) => `if (tid + ${r * WG} < D) { o${r} = o${r} + pu * cache[at + ${r * WG}]; }`)}
          }
          l = l * corr + bs;
          m = bm;
          workgroupBarrier();
        }
        let inv = select(0.0, 1.0 / l, l > 0.0);
        let to = bt * uniforms.h * D + hq * D + tid;
        ${each((r) => `if (tid + ${r * WG} < D) { setOutputAtIndex(to + ${r * WG}, o${r} * inv); }`)}
      }`;
  }
}

export const cachedAttention: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { qkv, cache, rope, starts } = inputs as Record<string, tf.TensorInfo>;
  const a = attrs as unknown as DecodeAttrs;
  const [, b, kv, l, d] = cache.shape;
  const rows = qkv.shape[0];
  const t = rows / b;
  const int = (v: number) => ({ type: 'int32', data: [v] });
  return gpu.runWebGPUProgram(
    new CachedAttentionProgram(rows, a.heads, d),
    [qkv, cache, rope, starts],
    'float32',
    [
      int(b),
      int(t),
      int(a.heads),
      int(kv),
      int(l),
      int(d),
      int(a.pos),
      { type: 'float32', data: [1 / Math.sqrt(d)] },
    ],
  );
};
