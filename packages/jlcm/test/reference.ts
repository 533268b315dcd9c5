/**
 * Plain float64 references of JLCM's forward paths, written independently of the package:
 * every row r uses the codebook of its group (K entries of d) and its scale s_r.
 */
export interface ReferenceLayout {
  rows: number;
  cols: number;
  d: number;
  k: number;
  groupOf: ArrayLike<number>;
  codebooks: ArrayLike<number>;
  scales: ArrayLike<number> | null;
}

/** The nearest codeword j of every vector of w / s (original order). */
export function nearestIndex(w: ArrayLike<number>, l: ReferenceLayout): Int32Array {
  const perRow = l.cols / l.d;
  const out = new Int32Array(l.rows * perRow);
  for (let r = 0; r < l.rows; r++) {
    const s = l.scales ? l.scales[r] : 1;
    for (let v = 0; v < perRow; v++) {
      let best = Number.POSITIVE_INFINITY;
      for (let j = 0; j < l.k; j++) {
        let dist = 0;
        for (let b = 0; b < l.d; b++)
          dist += (w[r * l.cols + v * l.d + b] / s - entry(l, r, j, b)) ** 2;
        if (dist < best) {
          best = dist;
          out[r * perRow + v] = j;
        }
      }
    }
  }
  return out;
}

function entry(l: ReferenceLayout, r: number, j: number, b: number): number {
  return l.codebooks[(l.groupOf[r] * l.k + j) * l.d + b];
}

/** The hard-assigned weight s_r · c_g[index] for a given mapping. */
export function hardWeight(l: ReferenceLayout, index: Int32Array): Float64Array {
  const perRow = l.cols / l.d;
  const out = new Float64Array(l.rows * l.cols);
  for (let r = 0; r < l.rows; r++)
    for (let v = 0; v < perRow; v++)
      for (let b = 0; b < l.d; b++)
        out[r * l.cols + v * l.d + b] =
          (l.scales ? l.scales[r] : 1) * entry(l, r, index[r * perRow + v], b);
  return out;
}

/** The soft-mapped weight s_r · Σ_j softmax(−‖w/s − c‖²/τ_g)_j c_j. */
export function softWeight(
  w: ArrayLike<number>,
  l: ReferenceLayout,
  tau: ArrayLike<number>,
): Float64Array {
  const perRow = l.cols / l.d;
  const out = new Float64Array(l.rows * l.cols);
  for (let r = 0; r < l.rows; r++) {
    const s = l.scales ? l.scales[r] : 1;
    for (let v = 0; v < perRow; v++) {
      const at = r * l.cols + v * l.d;
      const logits = Array.from({ length: l.k }, (_, j) => {
        let dist = 0;
        for (let b = 0; b < l.d; b++) dist += (w[at + b] / s - entry(l, r, j, b)) ** 2;
        return -dist / tau[l.groupOf[r]];
      });
      const top = Math.max(...logits);
      const e = logits.map((z) => Math.exp(z - top));
      const z = e.reduce((a, b) => a + b, 0);
      for (let b = 0; b < l.d; b++) {
        let m = 0;
        for (let j = 0; j < l.k; j++) m += (e[j] / z) * entry(l, r, j, b);
        out[at + b] = s * m;
      }
    }
  }
  return out;
}

/** Central finite differences of f at x (float64), one coordinate at a time. */
export function finiteDifferences(
  f: (x: Float64Array) => number,
  x: ArrayLike<number>,
  h: number,
): Float64Array {
  const at = Float64Array.from(x);
  return Float64Array.from(at, (xi, i) => {
    at[i] = xi + h;
    const up = f(at);
    at[i] = xi - h;
    const down = f(at);
    at[i] = xi;
    return (up - down) / (2 * h);
  });
}
