import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError, ShapeError } from './errors';

/**
 * eDKM's table math for scalar clustering (d = 1) on the U distinct values: the centroid
 * iterations (a plain float64 host function: the table is small and prepare() is async), and the
 * whole adjoint of them as ONE kernel (the backward pass is synchronous and must stay on the
 * device; as tfjs ops it takes ~30 dispatches per iteration). `points`/`counts`: [U, 1];
 * centroids stacked as [T + 1, K] (C_0 … C_T).
 */
export const TableKernelNames = {
  /** {gu: [U, 1], points, counts, centroids: [T + 1, K]}, attrs {tau} → [U, 4]: J, h, and two scratch columns. */
  TableBackward: 'EdkmTableBackward',
} as const;

export interface TableIterateAttrs {
  tau: number;
  iterations: number;
  epsilon: number;
}
export interface TableBackwardAttrs {
  tau: number;
}

function checkTable(points: tf.Tensor, counts: tf.Tensor, op: string): void {
  if (points.rank !== 2 || points.shape[1] !== 1)
    throw new ShapeError(`${op}: points must be [U, 1], got [${points.shape}]`);
  if (counts.rank !== 2 || counts.shape[0] !== points.shape[0] || counts.shape[1] !== 1) {
    throw new ShapeError(`${op}: counts must be [${points.shape[0]}, 1], got [${counts.shape}]`);
  }
}

/** The per-value gradient terms J (own row) and h (shared centroid path); see TableKernelNames. */
export function tableBackward(
  gu: tf.Tensor2D,
  points: tf.Tensor2D,
  counts: tf.Tensor2D,
  centroids: tf.Tensor2D,
  tau: number,
): tf.Tensor2D {
  checkTable(points, counts, 'tableBackward');
  if (gu.rank !== 2 || gu.shape[0] !== points.shape[0] || gu.shape[1] !== 1)
    throw new ShapeError(`tableBackward: gu must be [U, 1], got [${gu.shape}]`);
  if (centroids.rank !== 2 || centroids.shape[0] < 2)
    throw new ShapeError(
      `tableBackward: centroids must be [T + 1 >= 2, K], got [${centroids.shape}]`,
    );
  return tf.engine().runKernel(TableKernelNames.TableBackward, { gu, points, counts, centroids }, {
    tau,
  } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

/** log Σ_k exp(−(v − c_k)²/τ) and the attention row, in float64. */
function softmaxRow(v: number, c: ArrayLike<number>, tau: number, out: Float64Array): void {
  let max = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < c.length; k++) {
    out[k] = -((v - c[k]) ** 2) / tau;
    if (out[k] > max) max = out[k];
  }
  let sum = 0;
  for (let k = 0; k < c.length; k++) sum += out[k] = Math.exp(out[k] - max);
  for (let k = 0; k < c.length; k++) out[k] /= sum;
}

/** Float64 table math: the centroid iterations (used by DKM) and the backward reference. */
export const tableReference = {
  /**
   * Up to `iterations` centroid updates from c0 (stopping once no centroid moves more than
   * epsilon). Returns [(T + 1)·K] float32 centroids C_0 … C_T and T.
   */
  iterate(
    points: Float32Array,
    counts: Float32Array,
    c0: Float32Array,
    attrs: TableIterateAttrs,
  ): { centroids: Float32Array; iterations: number } {
    const k = c0.length;
    const u = points.length;
    const out = new Float32Array((attrs.iterations + 1) * k);
    out.set(c0, 0);
    let prev = Float64Array.from(c0);
    const a = new Float64Array(k);
    let t = 1;
    for (; t <= attrs.iterations; t++) {
      const num = new Float64Array(k);
      const mass = new Float64Array(k);
      for (let i = 0; i < u; i++) {
        softmaxRow(points[i], prev, attrs.tau, a);
        for (let j = 0; j < k; j++) {
          mass[j] += counts[i] * a[j];
          num[j] += counts[i] * a[j] * points[i];
        }
      }
      let shift = 0;
      const next = new Float64Array(k);
      for (let j = 0; j < k; j++) {
        next[j] = num[j] / Math.max(mass[j], 1e-30);
        shift = Math.max(shift, Math.abs(next[j] - prev[j]));
      }
      out.set(next, t * k);
      prev = Float64Array.from(out.subarray(t * k, t * k + k)); // continue from the float32 values, as kernels do
      if (attrs.epsilon > 0 && shift < attrs.epsilon) break;
    }
    const last = Math.min(t, attrs.iterations);
    return { centroids: out.slice(0, (last + 1) * k), iterations: last };
  },

  /** W̃ per distinct value: A (from C_{T−1}) · C_T. */
  output(points: Float32Array, centroids: Float32Array, k: number, tau: number): Float32Array {
    const T = centroids.length / k - 1;
    const a = new Float64Array(k);
    return points.map((v) => {
      softmaxRow(v, centroids.subarray((T - 1) * k, T * k), tau, a);
      let o = 0;
      for (let j = 0; j < k; j++) o += a[j] * centroids[T * k + j];
      return o;
    });
  },

  backward(
    gu: Float32Array,
    points: Float32Array,
    counts: Float32Array,
    centroids: Float32Array,
    k: number,
    tau: number,
  ): Float32Array {
    const u = points.length;
    const T = centroids.length / k - 1;
    const c = (t: number, j: number) => centroids[t * k + j];
    const two = 2 / tau;
    const out = new Float32Array(u * 4);
    const a = new Float64Array(k);
    const cPrev = centroids.subarray((T - 1) * k, T * k);
    let dC = new Float64Array(k);
    const dCprev = new Float64Array(k);
    const h = new Float64Array(u);
    for (let i = 0; i < u; i++) {
      softmaxRow(points[i], cPrev, tau, a);
      let o = 0;
      let ch = 0;
      for (let j = 0; j < k; j++) {
        o += a[j] * c(T, j);
        ch += a[j] * c(T - 1, j);
      }
      let jac = 0;
      for (let j = 0; j < k; j++) {
        jac += a[j] * (c(T, j) - o) * (c(T - 1, j) - ch);
        dC[j] += a[j] * gu[i];
        dCprev[j] += two * a[j] * gu[i] * (c(T, j) - o) * (points[i] - c(T - 1, j));
      }
      out[i * 4] = two * jac;
    }
    for (let t = T; t >= 1; t--) {
      const mass = new Float64Array(k);
      for (let i = 0; i < u; i++) {
        softmaxRow(points[i], centroids.subarray((t - 1) * k, t * k), tau, a);
        for (let j = 0; j < k; j++) mass[j] += counts[i] * a[j];
      }
      const dNum = dC.map((x, j) => x / Math.max(mass[j], 1e-30));
      const next = new Float64Array(k);
      for (let i = 0; i < u; i++) {
        softmaxRow(points[i], centroids.subarray((t - 1) * k, t * k), tau, a);
        let r = 0;
        for (let j = 0; j < k; j++) r += a[j] * dNum[j] * (points[i] - c(t, j));
        let own = 0;
        for (let j = 0; j < k; j++) {
          const dz = a[j] * (dNum[j] * (points[i] - c(t, j)) - r);
          own += a[j] * dNum[j] - two * dz * (points[i] - c(t - 1, j));
          next[j] += two * counts[i] * dz * (points[i] - c(t - 1, j));
        }
        h[i] += own;
      }
      dC = t === T ? next.map((x, j) => x + dCprev[j]) : next;
    }
    for (let i = 0; i < u; i++) out[i * 4 + 1] = h[i];
    return out;
  },
};
