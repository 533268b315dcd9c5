import { EdkmProgram } from './base';

/**
 * The centroid iterations on the U-row table (TableIterate), in one workgroup of 256 threads:
 * per update, (1) each point's largest logit and softmax normaliser under C_{t−1}; (2) centroid j's
 * mass and weighted sum over a 256/K-th of the points per thread, the partial sums added in a fixed
 * order (deterministic); (3) each point's output A(C_{t−1}) · C_t and the largest move, which stops
 * the loop at epsilon. T, C_{T−1}; C_T and the outputs stay on the device. Logits below e^-40 of
 * their row's largest are skipped, as in the float64 reference. Points of count 0 (the absent
 * codes of a table over all 65,536 codes) weigh nothing and are skipped: their output is 0.
 */
export class TableIterateProgram extends EdkmProgram {
  variableNames = ['points', 'counts', 'c0'];
  uniforms = 'u : i32, tau : f32, epsilon : f32,';
  shaderKey: string;
  /** rowsOnDevice: a `rows` input [1] bounds the loops (rows past it have count 0). */
  constructor(
    size: number,
    private readonly k: number,
    private readonly iterations: number,
    private readonly rowsOnDevice = false,
  ) {
    super([size], [1, 1, 1]);
    if (rowsOnDevice) this.variableNames = ['points', 'counts', 'c0', 'rows'];
    this.shaderKey = `edkm_table_iterate_${k}_${iterations}_${rowsOnDevice}`;
  }
  getUserCode(): string {
    const k = this.k;
    const slices = Math.max(1, Math.floor(256 / k));
    return `
      const KK = ${k};
      const II = ${this.iterations};
      const SLICES = ${slices};
      var<workgroup> massPart : array<f32, 256>;
      var<workgroup> numPart : array<f32, 256>;
      var<workgroup> moved : f32;
      // a logit minus its row's largest, (m² − a²)/τ for the distance a to a centroid and m to the
      // nearest one, in factored form: exactly 0 for the nearest, and no cancellation between
      // large numbers however small τ is (every pass recomputes logits, and a compiler may
      // contract −a²/τ − (−m²/τ) differently in each: at τ = 1e-12 that was off by e^±8)
      fn logit(m : f32, a : f32, invTau : f32) -> f32 { return (m - a) * (m + a) * invTau; }
      fn main(index : i32) {
        let tid = i32(localIndex);
        let U = uniforms.u;
        let N = ${this.rowsOnDevice ? 'min(U, i32(rows[0]))' : 'U'}; // rows that may weigh
        let invTau = 1.0 / uniforms.tau;
        let stepsAt = (II + 1) * KK;
        let lastAt = stepsAt + 1;
        let outAt = lastAt + 2 * KK;
        let scratch = outAt + U;
        for (var j = tid; j < KK; j = j + 256) { result[j] = c0[j]; }
        storageBarrier();
        var T = II;
        for (var t = 1; t <= II; t = t + 1) {
          let prev = (t - 1) * KK;
          for (var p = tid; p < N; p = p + 256) {
            if (counts[p] == 0.0) { continue; } // an absent code (prepareOnDevice) weighs 0
            let v = points[p];
            var m = 3.0e38;
            for (var j = 0; j < KK; j = j + 1) { m = min(m, abs(v - result[prev + j])); }
            var z = 0.0;
            for (var j = 0; j < KK; j = j + 1) {
              let l = logit(m, abs(v - result[prev + j]), invTau);
              if (l > -40.0) { z = z + exp(l); }
            }
            result[scratch + 2 * p] = m;
            result[scratch + 2 * p + 1] = z;
          }
          storageBarrier();
          let j = tid % KK;
          let slice = tid / KK;
          var mass = 0.0;
          var num = 0.0;
          if (slice < SLICES) {
            let c = result[prev + j];
            for (var p = slice; p < N; p = p + SLICES) {
              if (counts[p] == 0.0) { continue; }
              let v = points[p];
              let l = logit(result[scratch + 2 * p], abs(v - c), invTau);
              if (l > -40.0) {
                let a = counts[p] * exp(l) / result[scratch + 2 * p + 1];
                mass = mass + a;
                num = num + a * v;
              }
            }
          }
          massPart[tid] = mass;
          numPart[tid] = num;
          workgroupBarrier();
          if (tid < KK) {
            var m = 0.0;
            var n = 0.0;
            for (var s = 0; s < SLICES; s = s + 1) { m = m + massPart[s * KK + tid]; n = n + numPart[s * KK + tid]; }
            result[t * KK + tid] = n / max(m, 1e-30);
          }
          storageBarrier();
          // this update's output per point (overwritten by the next: at the end, A(C_{T-1}) C_T)
          for (var p = tid; p < N; p = p + 256) {
            if (counts[p] == 0.0) { result[outAt + p] = 0.0; continue; }
            let v = points[p];
            let m = result[scratch + 2 * p];
            var o = 0.0;
            for (var i = 0; i < KK; i = i + 1) {
              let l = logit(m, abs(v - result[prev + i]), invTau);
              if (l > -40.0) { o = o + exp(l) * result[t * KK + i]; }
            }
            result[outAt + p] = o / result[scratch + 2 * p + 1];
          }
          if (tid == 0) {
            var shift = 0.0;
            for (var i = 0; i < KK; i = i + 1) { shift = max(shift, abs(result[t * KK + i] - result[prev + i])); }
            moved = shift;
          }
          let shift = workgroupUniformLoad(&moved);
          storageBarrier();
          if (t < II && uniforms.epsilon > 0.0 && shift < uniforms.epsilon) {
            T = t;
            break;
          }
        }
        if (tid == 0) { result[stepsAt] = f32(T); }
        for (var j = tid; j < 2 * KK; j = j + 256) { result[lastAt + j] = result[(T - 1) * KK + j]; }
      }`;
  }
}
