import { EdkmProgram } from './base';
import { reduceScratch, workgroupReduce } from './reduce';

/**
 * eDKM's whole table backward (see @edkm/core table.ts) in one workgroup: phases over the U
 * values (one thread per value) and over the K centroids (one thread per centroid, looping over
 * the values), separated by barriers. Columns 2 and 3 of the output hold per-value scratch
 * (log-sum-exp, and the softmax-backward term r). Values of count 0 (absent codes of a table
 * over all 65,536 codes) are skipped: their J and h are 0.
 */
export class TableBackwardProgram extends EdkmProgram {
  variableNames: string[];
  uniforms = 'u : i32, steps : i32, tau : f32,';
  shaderKey: string;
  /** stepsOnDevice: T is read from the `steps` input (TableIterate's), not the uniform. */
  /** rowsOnDevice: a `rows` input [1] bounds the loops over the values (past it, count 0). */
  constructor(
    u: number,
    private readonly k: number,
    private readonly stepsOnDevice = false,
    private readonly rowsOnDevice = false,
  ) {
    super([u, 4], [1, 1, 1]);
    this.variableNames = ['seed', 'points', 'counts', 'centroids'];
    if (stepsOnDevice) this.variableNames.push('steps');
    if (rowsOnDevice) this.variableNames.push('rows');
    this.shaderKey = `edkm_table_backward_${k}_${stepsOnDevice}_${rowsOnDevice}`;
  }
  getUserCode(): string {
    // sums over the U values: every thread accumulates K partial sums over a strided share of
    // the values, then the workgroup adds them up per centroid (a tree in shared memory)
    const reduce = (partial: string, onTotal: string) => `
          for (var j = 0; j < KK; j = j + 1) {${workgroupReduce(`${partial}[j]`, onTotal)}
          }`;
    return `
      const KK = ${this.k};
      var<workgroup> dC : array<f32, KK>;
      var<workgroup> dNum : array<f32, KK>;
      ${reduceScratch}

      fn cen(t : i32, j : i32) -> f32 { return centroids[t * KK + j]; }
      fn logit(v : f32, t : i32, j : i32) -> f32 { let d = v - cen(t, j); return -d * d / uniforms.tau; }
      fn lse(v : f32, t : i32) -> f32 {
        var m = -3.0e38;
        for (var j = 0; j < KK; j = j + 1) { m = max(m, logit(v, t, j)); }
        var s = 0.0;
        for (var j = 0; j < KK; j = j + 1) { s = s + exp(logit(v, t, j) - m); }
        return m + log(s);
      }
      fn att(v : f32, t : i32, j : i32, l : f32) -> f32 { return exp(logit(v, t, j) - l); }

      var<workgroup> stepsShared : i32;
      fn main(index : i32) {
        let tid = i32(localIndex);
        ${this.stepsOnDevice ? 'if (tid == 0) { stepsShared = i32(steps[0]); }' : 'stepsShared = uniforms.steps;'}
        let T = workgroupUniformLoad(&stepsShared);
        let N = ${this.rowsOnDevice ? 'min(uniforms.u, i32(rows[0]))' : 'uniforms.u'}; // rows that may weigh
        let two = 2.0 / uniforms.tau;
        var part : array<f32, KK>;
        // own-row Jacobian with the last iteration's attention (from C_{T-1})
        for (var u = tid; u < N; u = u + 256) {
          if (counts[u] == 0.0) { result[u * 4] = 0.0; result[u * 4 + 1] = 0.0; continue; }
          let v = points[u];
          let l = lse(v, T - 1);
          var o = 0.0;
          var ch = 0.0;
          for (var j = 0; j < KK; j = j + 1) {
            let a = att(v, T - 1, j, l);
            o = o + a * cen(T, j);
            ch = ch + a * cen(T - 1, j);
          }
          var jac = 0.0;
          for (var j = 0; j < KK; j = j + 1) {
            jac = jac + att(v, T - 1, j, l) * (cen(T, j) - o) * (cen(T - 1, j) - ch);
          }
          result[u * 4] = two * jac;
          result[u * 4 + 1] = 0.0;
        }
        for (var j = tid; j < KK; j = j + 256) { dC[j] = seed[j]; }
        storageBarrier();
        workgroupBarrier();
        for (var t = T; t >= 1; t = t - 1) {
          // centroid masses S_k under this iteration's attention
          for (var j = 0; j < KK; j = j + 1) { part[j] = 0.0; }
          for (var u = tid; u < N; u = u + 256) {
            if (counts[u] == 0.0) { continue; }
            let v = points[u];
            let l = lse(v, t - 1);
            result[u * 4 + 2] = l;
            for (var j = 0; j < KK; j = j + 1) { part[j] = part[j] + counts[u] * att(v, t - 1, j, l); }
          }
          ${reduce('part', 'dNum[j] = dC[j] / max(red[0], 1e-30);')}
          // per value: its share of the centroid path, and the softmax-backward term r
          for (var u = tid; u < N; u = u + 256) {
            if (counts[u] == 0.0) { continue; }
            let v = points[u];
            let l = result[u * 4 + 2];
            var r = 0.0;
            for (var j = 0; j < KK; j = j + 1) { r = r + att(v, t - 1, j, l) * dNum[j] * (v - cen(t, j)); }
            var own = 0.0;
            for (var j = 0; j < KK; j = j + 1) {
              let a = att(v, t - 1, j, l);
              let dz = a * (dNum[j] * (v - cen(t, j)) - r);
              own = own + a * dNum[j] - two * dz * (v - cen(t - 1, j));
            }
            result[u * 4 + 1] = result[u * 4 + 1] + own;
            result[u * 4 + 3] = r;
          }
          // dL/dC_{t-1}
          for (var j = 0; j < KK; j = j + 1) { part[j] = 0.0; }
          for (var u = tid; u < N; u = u + 256) {
            if (counts[u] == 0.0) { continue; }
            let v = points[u];
            let l = result[u * 4 + 2];
            let r = result[u * 4 + 3];
            for (var j = 0; j < KK; j = j + 1) {
              let a = att(v, t - 1, j, l);
              part[j] = part[j] + counts[u] * a * (dNum[j] * (v - cen(t, j)) - r) * (v - cen(t - 1, j));
            }
          }
          ${reduce('part', 'dC[j] = two * red[0] + select(0.0, seed[KK + j], t == T);')}
        }
      }`;
  }
}
