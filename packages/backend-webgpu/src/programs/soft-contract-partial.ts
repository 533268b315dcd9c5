import { EdkmProgram } from './base';
import { codeFunction } from './code';
import { reduceScratch, workgroupReduce } from './reduce';

/**
 * First pass of SoftContract: like CodeContract, but each weight's attention row is recomputed
 * from its own rounded value (K exponentials) instead of read from a per-value table: no
 * gathers, so the pass runs at the speed of reading x and g.
 */
export class SoftContractPartialProgram extends EdkmProgram {
  variableNames = ['x', 'g', 'centroids'];
  uniforms = 'n : i32, groups : i32, tau : f32,';
  shaderKey: string;
  constructor(
    groups: number,
    private readonly k: number,
    private readonly dtype: 'bf16' | 'fp16',
  ) {
    super([groups, 2 * k], [groups, 1, 1]);
    this.shaderKey = `edkm_soft_contract_${dtype}_${k}`;
  }
  getUserCode(): string {
    const k = this.k;
    const value =
      this.dtype === 'bf16'
        ? 'bitcast<f32>(u32(edkmCode(x[i])) << 16u)'
        : 'unpack2x16float(u32(edkmCode(x[i]))).x';
    const reduceOne = (acc: string, col: number) =>
      workgroupReduce(acc, `result[group * 2 * KK + ${col}] = red[0];`);
    const reduce = `
        for (var j = 0; j < 2 * KK; j = j + 1) {${workgroupReduce('ACC(j)', 'result[group * 2 * KK + j] = red[0];')}
        }`;
    // both forms: one main per workgroup over a strided share of the weights
    const header = `
      ${codeFunction(this.dtype)}
      const KK = ${k};
      ${reduceScratch}
      fn main(index : i32) {
        let tid = i32(localIndex);
        let group = i32(workgroupId.x);
        let two = 2.0 / uniforms.tau;`;
    if (k <= 16) {
      // up to 16 centroids: every per-centroid quantity in a register of its own (a dynamically
      // indexed private array lives in slow local memory)
      const js = Array.from({ length: k }, (_, j) => j);
      const each = (f: (j: number) => string, sep = '\n          ') => js.map(f).join(sep);
      return `${header}
        let negInvTau = -1.0 / uniforms.tau;
        ${each((j) => `let p${j} = centroids[${j}]; let l${j} = centroids[${k + j}];`)}
        ${each((j) => `var a${j} = 0.0; var b${j} = 0.0;`)}
        for (var i = group * 256 + tid; i < uniforms.n; i = i + uniforms.groups * 256) {
          let v = ${value};
          let gi = g[i];
          ${each((j) => `let d${j} = v - p${j}; let z${j} = d${j} * d${j} * negInvTau;`)}
          let m = ${js.slice(1).reduce((acc, j) => `max(${acc}, z${j})`, 'z0')};
          ${each((j) => `let e${j} = exp(z${j} - m);`)}
          let sum = ${each((j) => `e${j}`, ' + ')};
          let o = (${each((j) => `e${j} * l${j}`, ' + ')}) / sum;
          let s = gi / sum;
          ${each((j) => `a${j} = a${j} + e${j} * s; b${j} = b${j} + two * e${j} * s * (l${j} - o) * d${j};`)}
        }
        ${[...js.map((j) => `a${j}`), ...js.map((j) => `b${j}`)].map((acc, col) => reduceOne(acc, col)).join('')}
      }`;
    }
    return `${header}
        var prev : array<f32, KK>;
        var last : array<f32, KK>;
        for (var j = 0; j < KK; j = j + 1) { prev[j] = centroids[j]; last[j] = centroids[KK + j]; }
        var accA : array<f32, KK>;
        var accB : array<f32, KK>;
        var z : array<f32, KK>;
        for (var j = 0; j < KK; j = j + 1) { accA[j] = 0.0; accB[j] = 0.0; }
        for (var i = group * 256 + tid; i < uniforms.n; i = i + uniforms.groups * 256) {
          let v = ${value};
          let gi = g[i];
          var m = -3.0e38;
          for (var j = 0; j < KK; j = j + 1) {
            let d = v - prev[j];
            z[j] = -d * d / uniforms.tau;
            m = max(m, z[j]);
          }
          var sum = 0.0;
          var o = 0.0;
          for (var j = 0; j < KK; j = j + 1) {
            z[j] = exp(z[j] - m);
            sum = sum + z[j];
            o = o + z[j] * last[j];
          }
          let inv = 1.0 / sum;
          o = o * inv;
          for (var j = 0; j < KK; j = j + 1) {
            let ag = z[j] * inv * gi;
            accA[j] = accA[j] + ag;
            accB[j] = accB[j] + two * ag * (last[j] - o) * (v - prev[j]);
          }
        }
        ${reduce.replace('ACC(j)', 'select(accB[max(j - KK, 0)], accA[min(j, KK - 1)], j < KK)')}
      }`;
  }
}
