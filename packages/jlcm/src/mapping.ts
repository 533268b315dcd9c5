import { initCentroids } from '@edkm/dkm';

/**
 * A weight w [rows, cols] split into vectors of d consecutive weights of a row, row r using the
 * codebook of group groupOf[r] (K entries of d, `codebooks` [groups, K, d]) times its scale s[r]
 * (1 without scales). All in original row order.
 */
export interface CodebookLayout {
  rows: number;
  cols: number;
  d: number;
  k: number;
  groupOf: Int32Array;
}

export interface Mapping {
  /** Codebook row (g·K + j) of every vector, original order. */
  index: Int32Array;
  /**
   * d×d Jacobian of the soft mapping per vector (row-major, symmetric), when a temperature was
   * given: ∂m/∂x = (2/τ) Cov_A(c), m(x) = Σ_j A_j c_j, A = softmax(−‖x − c‖²/τ), x = w/s.
   */
  jacobian?: Float32Array;
  /** Per group: the sum of ‖x − c_nearest‖² and the number of vectors. */
  nearestSqDistance: Float64Array;
  vectors: Float64Array;
}

/**
 * The hard mapping (nearest codeword of every vector x = w/s; x = 0 in a row whose
 * scale is 0) and, with temperatures `tau` per group, the Jacobian of the soft mapping that the
 * straight-through step sends the weight's gradient through. Float64 throughout.
 */
export function mapWeights(
  w: Float32Array,
  layout: CodebookLayout,
  codebooks: Float32Array,
  scales: Float32Array | null,
  tau: ArrayLike<number> | null,
): Mapping {
  const { rows, cols, d, k, groupOf } = layout;
  const groups = codebooks.length / (k * d);
  const perRow = cols / d;
  const index = new Int32Array(rows * perRow);
  const jacobian = tau ? new Float32Array(rows * perRow * d * d) : undefined;
  const nearestSqDistance = new Float64Array(groups);
  const vectors = new Float64Array(groups);
  const x = new Float64Array(d);
  const dist = new Float64Array(k);
  const a = new Float64Array(k);
  const m = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    const g = groupOf[r];
    const base = g * k * d;
    const inv = scales ? (scales[r] === 0 ? 0 : 1 / scales[r]) : 1;
    vectors[g] += perRow;
    for (let v = 0; v < perRow; v++) {
      const at = r * cols + v * d;
      let best = 0;
      if (d === 1) {
        const x0 = w[at] * inv;
        for (let j = 0; j < k; j++) {
          const diff = x0 - codebooks[base + j];
          dist[j] = diff * diff;
          if (dist[j] < dist[best]) best = j;
        }
      } else {
        for (let b = 0; b < d; b++) x[b] = w[at + b] * inv;
        for (let j = 0; j < k; j++) {
          let s = 0;
          for (let b = 0; b < d; b++) {
            const diff = x[b] - codebooks[base + j * d + b];
            s += diff * diff;
          }
          dist[j] = s;
          if (s < dist[best]) best = j;
        }
      }
      index[r * perRow + v] = g * k + best;
      nearestSqDistance[g] += dist[best];
      if (!jacobian || !tau) continue;
      const t = tau[g];
      let z = 0;
      for (let j = 0; j < k; j++) z += a[j] = Math.exp(-(dist[j] - dist[best]) / t);
      m.fill(0);
      for (let j = 0; j < k; j++) {
        a[j] /= z;
        for (let b = 0; b < d; b++) m[b] += a[j] * codebooks[base + j * d + b];
      }
      const out = (r * perRow + v) * d * d;
      for (let p = 0; p < d; p++) {
        for (let q = p; q < d; q++) {
          let cov = 0;
          for (let j = 0; j < k; j++)
            cov +=
              a[j] * (codebooks[base + j * d + p] - m[p]) * (codebooks[base + j * d + q] - m[q]);
          jacobian[out + p * d + q] = jacobian[out + q * d + p] = (2 / t) * cov;
        }
      }
    }
  }
  return { index, jacobian, nearestSqDistance, vectors };
}

/**
 * The initial fit of codebooks and scales to w: alternating minimisation of
 * Σ ‖w_v − s_r c_{idx(v)}‖² over the mapping (nearest codeword), the codebooks (least squares per
 * codeword) and the scales (least squares per row). Scales start at each row's max |w|, codebooks
 * at k-means++ (or quantile) codewords of the normalised vectors of their group. At the end each
 * group's scales are divided by their mean |s| and its codebook multiplied by it.
 */
export function fitCodebooks(
  w: Float32Array,
  layout: CodebookLayout,
  groups: number,
  opts: {
    perChannelScale: boolean;
    iterations: number;
    init: 'kmeans++' | 'quantiles';
    seed: number;
  },
): { codebooks: Float32Array; scales: Float32Array | null } {
  const { rows, cols, d, k, groupOf } = layout;
  const perRow = cols / d;
  let scales: Float32Array | null = null;
  if (opts.perChannelScale) {
    scales = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      let max = 0;
      for (let c = 0; c < cols; c++) max = Math.max(max, Math.abs(w[r * cols + c]));
      scales[r] = max > 0 ? max : 1;
    }
  }
  const codebooks = new Float32Array(groups * k * d);
  for (let g = 0; g < groups; g++) {
    const members: number[] = [];
    for (let r = 0; r < rows; r++) if (groupOf[r] === g) members.push(r);
    // at most ~16k evenly spaced vectors seed the codewords (k-means++ sorts its input)
    const total = members.length * perRow;
    const stride = Math.max(1, Math.floor(total / 16384));
    const sample = new Float32Array(Math.ceil(total / stride) * d);
    for (let i = 0, n = 0; i < total; i += stride, n++) {
      const r = members[Math.floor(i / perRow)];
      const at = r * cols + (i % perRow) * d;
      for (let b = 0; b < d; b++) sample[n * d + b] = w[at + b] / (scales ? scales[r] : 1);
    }
    const ones = new Float32Array(sample.length / d).fill(1);
    codebooks.set(initCentroids(sample, ones, d, k, opts.init, opts.seed + g), g * k * d);
  }
  for (let it = 0; it < opts.iterations; it++) {
    const { index } = mapWeights(w, layout, codebooks, scales, null);
    // codewords: c_j = Σ s_r w_v / Σ s_r² over the vectors mapped to j (unchanged when none)
    const numerator = new Float64Array(codebooks.length);
    const denominator = new Float64Array(codebooks.length / d);
    for (let r = 0; r < rows; r++) {
      const s = scales ? scales[r] : 1;
      for (let v = 0; v < perRow; v++) {
        const j = index[r * perRow + v];
        denominator[j] += s * s;
        for (let b = 0; b < d; b++) numerator[j * d + b] += s * w[r * cols + v * d + b];
      }
    }
    for (let j = 0; j < denominator.length; j++)
      if (denominator[j] > 0)
        for (let b = 0; b < d; b++) codebooks[j * d + b] = numerator[j * d + b] / denominator[j];
    if (!scales) continue;
    // scales: s_r = ⟨w_r, q_r⟩ / ⟨q_r, q_r⟩ with q_r the row's codewords (unchanged when q_r = 0)
    for (let r = 0; r < rows; r++) {
      let wq = 0;
      let qq = 0;
      for (let v = 0; v < perRow; v++) {
        const j = index[r * perRow + v];
        for (let b = 0; b < d; b++) {
          const q = codebooks[j * d + b];
          wq += w[r * cols + v * d + b] * q;
          qq += q * q;
        }
      }
      if (qq > 0 && wq !== 0) scales[r] = wq / qq;
    }
  }
  if (scales) {
    // codebooks in weight units and scales around 1 (the same product): the codewords then move
    // like the weights under one optimizer, and the scales by relative amounts
    const sum = new Float64Array(groups);
    const count = new Float64Array(groups);
    for (let r = 0; r < rows; r++) {
      sum[groupOf[r]] += Math.abs(scales[r]);
      count[groupOf[r]]++;
    }
    const unit = Array.from(sum, (s, g) => (s > 0 ? s / count[g] : 1));
    for (let r = 0; r < rows; r++) scales[r] /= unit[groupOf[r]];
    for (let i = 0; i < codebooks.length; i++) codebooks[i] *= unit[Math.floor(i / (k * d))];
  }
  return { codebooks, scales };
}
