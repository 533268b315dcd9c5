import * as tf from '@tensorflow/tfjs-core';
import { DTypeError, InvalidArgumentError, ShapeError } from './errors';

/**
 * The nearest entry of every vector of a weight among its row's codebook, and the Jacobian of the
 * soft assignment around it (JLCM's per-step mapping, `@edkm/jlcm`). Each backend plugin
 * registers it; `nearestReference` is the ground truth.
 *
 * NearestEntry: inputs {x: [R, C] f32, inv: [R] f32, table: [G, K·d] f32, groups: [R] int32,
 * tau: [G] f32}, attrs {d, k} → [index [R·C/d] int32, jacobian [R·C/d, d·d] f32]. Row r's
 * vectors v (d consecutive elements) are scaled, y = x_v · inv[r], and compared with the K
 * entries of codebook g = groups[r]:
 *   index = g·K + j*, j* the first j with the least ‖y − c_j‖²;
 *   jacobian = (2/τ_g) Σ_j A_j (c_j − m)(c_j − m)ᵀ, A = softmax_j(−‖y − c_j‖²/τ_g), m = Σ_j A_j c_j.
 */
export const NearestKernelNames = {
  NearestEntry: 'EdkmNearestEntry',
} as const;

export interface NearestEntryAttrs {
  d: number;
  k: number;
}

/**
 * The hard mapping and the soft mapping's Jacobian of x [R, C] (see NearestKernelNames): one pass
 * over the weight on its backend. Not differentiable (its outputs are constants of a step).
 */
export function nearestEntry(
  x: tf.Tensor2D,
  inv: tf.Tensor1D,
  table: tf.Tensor2D,
  groups: tf.Tensor1D,
  tau: tf.Tensor1D,
  d: number,
): { index: tf.Tensor1D; jacobian: tf.Tensor2D } {
  if (x.rank !== 2 || table.rank !== 2)
    throw new ShapeError(
      `nearestEntry: x and table must be 2-D, got [${x.shape}], [${table.shape}]`,
    );
  const [R, C] = x.shape;
  const [G, entries] = table.shape;
  if (!(Number.isInteger(d) && d >= 1 && C % d === 0 && entries % d === 0))
    throw new InvalidArgumentError(
      `nearestEntry: d = ${d} must divide the row length ${C} and the codebook size ${entries}`,
    );
  if (inv.shape.join() !== `${R}` || groups.shape.join() !== `${R}` || tau.shape.join() !== `${G}`)
    throw new ShapeError(
      `nearestEntry: inv and groups must be [${R}], tau [${G}]; got [${inv.shape}], [${groups.shape}], [${tau.shape}]`,
    );
  if ([x, inv, table, tau].some((t) => t.dtype !== 'float32') || groups.dtype !== 'int32')
    throw new DTypeError('nearestEntry: x, inv, table and tau must be float32, groups int32');
  const attrs: NearestEntryAttrs = { d, k: entries / d };
  const [index, jacobian] = tf
    .engine()
    .runKernel(
      NearestKernelNames.NearestEntry,
      { x, inv, table, groups, tau },
      attrs as unknown as tf.NamedAttrMap,
    ) as tf.Tensor[];
  return { index: index as tf.Tensor1D, jacobian: jacobian as tf.Tensor2D };
}

/**
 * The kernel's loop on host arrays, float64 (the cpu and wasm plugins run it over their tensors'
 * own memory). `index` [R·C/d] and `jacobian` [R·C/d · d·d] are written.
 */
export function nearestEntryInto(
  x: Float32Array,
  inv: Float32Array,
  table: Float32Array,
  groups: Int32Array,
  tau: Float32Array,
  R: number,
  C: number,
  d: number,
  k: number,
  index: Int32Array,
  jacobian: Float32Array,
): void {
  const perRow = C / d;
  const dist = new Float64Array(k);
  const a = new Float64Array(k);
  const y = new Float64Array(d);
  const m = new Float64Array(d);
  for (let r = 0; r < R; r++) {
    const g = groups[r];
    const base = g * k * d;
    const s = inv[r];
    const t = tau[g];
    const twoOverTau = 2 / t;
    for (let v = 0; v < perRow; v++) {
      const at = r * C + v * d;
      const out = r * perRow + v;
      let best = 0;
      if (d === 1) {
        const y0 = x[at] * s;
        let least = Number.POSITIVE_INFINITY;
        for (let j = 0; j < k; j++) {
          const diff = y0 - table[base + j];
          const e = diff * diff;
          dist[j] = e;
          if (e < least) {
            least = e;
            best = j;
          }
        }
        let z = 0;
        let mean = 0;
        for (let j = 0; j < k; j++) {
          const w = Math.exp((least - dist[j]) / t);
          a[j] = w;
          z += w;
          mean += w * table[base + j];
        }
        mean /= z;
        let cov = 0;
        for (let j = 0; j < k; j++) {
          const dev = table[base + j] - mean;
          cov += a[j] * dev * dev;
        }
        index[out] = g * k + best;
        jacobian[out] = (twoOverTau * cov) / z;
        continue;
      }
      for (let b = 0; b < d; b++) y[b] = x[at + b] * s;
      let least = Number.POSITIVE_INFINITY;
      for (let j = 0; j < k; j++) {
        let e = 0;
        for (let b = 0; b < d; b++) {
          const diff = y[b] - table[base + j * d + b];
          e += diff * diff;
        }
        dist[j] = e;
        if (e < least) {
          least = e;
          best = j;
        }
      }
      let z = 0;
      m.fill(0);
      for (let j = 0; j < k; j++) {
        const w = Math.exp((least - dist[j]) / t);
        a[j] = w;
        z += w;
        for (let b = 0; b < d; b++) m[b] += w * table[base + j * d + b];
      }
      for (let b = 0; b < d; b++) m[b] /= z;
      const o = out * d * d;
      for (let p = 0; p < d; p++)
        for (let q = p; q < d; q++) {
          let cov = 0;
          for (let j = 0; j < k; j++)
            cov += a[j] * (table[base + j * d + p] - m[p]) * (table[base + j * d + q] - m[q]);
          jacobian[o + p * d + q] = jacobian[o + q * d + p] = (twoOverTau * cov) / z;
        }
      index[out] = g * k + best;
    }
  }
}

/** Plain float64 reference of NearestEntry, written for clarity. */
export const nearestReference = {
  nearestEntry(
    x: Float32Array,
    inv: Float32Array,
    table: Float32Array,
    groups: Int32Array,
    tau: Float32Array,
    R: number,
    C: number,
    d: number,
  ): { index: Int32Array; jacobian: Float64Array } {
    const k = table.length / (tau.length * d);
    const n = (R * C) / d;
    const index = new Int32Array(n);
    const jacobian = new Float64Array(n * d * d);
    for (let vec = 0; vec < n; vec++) {
      const r = Math.floor((vec * d) / C);
      const g = groups[r];
      const entry = (j: number, b: number) => table[(g * k + j) * d + b];
      const y = Array.from({ length: d }, (_, b) => x[vec * d + b] * inv[r]);
      const dist = Array.from({ length: k }, (_, j) =>
        y.reduce((s, yb, b) => s + (yb - entry(j, b)) ** 2, 0),
      );
      const least = Math.min(...dist);
      index[vec] = g * k + dist.indexOf(least);
      const e = dist.map((dj) => Math.exp(-(dj - least) / tau[g]));
      const z = e.reduce((s, v) => s + v, 0);
      const A = e.map((v) => v / z);
      const m = Array.from({ length: d }, (_, b) =>
        A.reduce((s, aj, j) => s + aj * entry(j, b), 0),
      );
      for (let p = 0; p < d; p++)
        for (let q = 0; q < d; q++)
          jacobian[vec * d * d + p * d + q] =
            (2 / tau[g]) *
            A.reduce((s, aj, j) => s + aj * (entry(j, p) - m[p]) * (entry(j, q) - m[q]), 0);
    }
    return { index, jacobian };
  },
};
