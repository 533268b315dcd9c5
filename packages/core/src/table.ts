import * as tf from '@tensorflow/tfjs-core';
import { DTypeError, ShapeError } from './errors';
import { type HalfDtype, fromHalfBits } from './half';

/**
 * eDKM's table math for scalar clustering (d = 1) on the U distinct values: `tableIterate` runs
 * the centroid iterations on the U-row table in one workgroup (the cpu plugin's kernel is the
 * float64 reference); the backward pass is synchronous and must stay on the device, so it is two
 * more kernels:
 *  - `codeContract`: the upstream gradient g (one value per weight) contracted with a per-value
 *    table F [U, 2K] — Σ_i F[row(code(w_i)), :] · g_i — a deterministic reduction over N that
 *    replaces any per-value scatter-add of g;
 *  - `tableBackward`: the whole adjoint of the iterations on the U-row table, in one workgroup.
 * `points`/`counts`: [U, 1]; centroids stacked as [T + 1, K] (C_0 … C_T). A row of count 0 weighs
 * nothing (a table over all 65,536 codes, where absent codes have count 0: DkmTensor's
 * prepareOnDevice): its own outputs (W̃, J, h) are unspecified, and a kernel may skip it. An
 * optional input `rows` ([1], float32) says that every row at or past rows[0] has count 0: a kernel
 * may stop its loops there (the table was compacted on the device; its length is known there only).
 */
export const TableKernelNames = {
  /**
   * {seed: [2, K], points, counts, centroids: [T + 1, K]}, attrs {tau} → [U, 4]: J, h and two
   * scratch columns. seed = (dL/dC_T, the output attention's share of dL/dC_{T−1}).
   */
  TableBackward: 'EdkmTableBackward',
  /** {table: [U, C], codeToRow: [65536] int32, x: [N], g: [N]}, attrs {dtype} → [C]. */
  CodeContract: 'EdkmCodeContract',
  /**
   * {x: [N], g: [N], centroids: [2, K] (C_{T−1}; C_T)}, attrs {dtype, tau} → [2K]: the same seed as
   * CodeContract with `tableReference.contraction`, but each weight's attention row is recomputed
   * from its own rounded value (2K exponentials) instead of gathered from a table.
   */
  SoftContract: 'EdkmSoftContract',
  /**
   * {points, counts, c0: [1, K]}, attrs {tau, iterations: I, epsilon} → flat float32, laid out by
   * `tableIterateLayout`: C_0 … C_T, stopping after update T once no centroid moved more than
   * epsilon (or at I; rows past T are unspecified); T; C_{T−1} and C_T; W̃ per point A(C_{T−1})·C_T;
   * scratch. Nothing needs reading back before the forward and backward use it.
   */
  TableIterate: 'EdkmTableIterate',
} as const;

/** Offsets into TableIterate's flat result (in float32 elements). */
export function tableIterateLayout(u: number, k: number, iterations: number) {
  const centroids = 0; // [(I + 1), K]: C_0 … C_T valid
  const steps = (iterations + 1) * k; // [1]: T, as a float
  const last = steps + 1; // [2, K]: C_{T−1}; C_T
  const output = last + 2 * k; // [U]: W̃ per point
  const scratch = output + u; // [U, 2]: each point's largest logit and normaliser
  return { centroids, steps, last, output, scratch, size: scratch + 2 * u };
}

/** TableIterate's attrs (the kernel's and the reference's): temperature, iteration cap, stop threshold. */
export interface TableIterateAttrs {
  tau: number;
  iterations: number;
  epsilon: number;
}
export interface TableBackwardAttrs {
  tau: number;
}

function checkRows(rows: tf.Tensor | undefined, op: string): void {
  if (rows && (rows.size !== 1 || rows.dtype !== 'float32'))
    throw new ShapeError(`${op}: rows must be a float32 [1], got [${rows.shape}] ${rows.dtype}`);
}

function checkTable(points: tf.Tensor, counts: tf.Tensor, op: string): void {
  if (points.rank !== 2 || points.shape[1] !== 1) {
    throw new ShapeError(`${op}: points must be [U, 1], got [${points.shape}]`);
  }
  if (counts.rank !== 2 || counts.shape[0] !== points.shape[0] || counts.shape[1] !== 1) {
    throw new ShapeError(`${op}: counts must be [${points.shape[0]}, 1], got [${counts.shape}]`);
  }
}

/** The centroid iterations on the table, on the device; see TableKernelNames.TableIterate. */
export function tableIterate(
  points: tf.Tensor2D,
  counts: tf.Tensor2D,
  c0: tf.Tensor2D,
  tau: number,
  iterations: number,
  epsilon = 0,
  rows?: tf.Tensor1D,
): tf.Tensor1D {
  checkTable(points, counts, 'tableIterate');
  checkRows(rows, 'tableIterate');
  if (c0.rank !== 2 || c0.shape[0] !== 1 || c0.shape[1] < 1 || c0.shape[1] > 256)
    throw new ShapeError(`tableIterate: c0 must be [1, K ≤ 256], got [${c0.shape}]`);
  if (!(Number.isInteger(iterations) && iterations >= 1))
    throw new ShapeError(`tableIterate: iterations must be a positive integer, got ${iterations}`);
  const attrs: TableIterateAttrs = { tau, iterations, epsilon };
  return tf
    .engine()
    .runKernel(
      TableKernelNames.TableIterate,
      rows ? { points, counts, c0, rows } : { points, counts, c0 },
      attrs as unknown as tf.NamedAttrMap,
    ) as tf.Tensor1D;
}

/**
 * The per-value gradient terms J (own row) and h (shared centroid path); see TableKernelNames.
 * `steps` ([1], T as a float, e.g. TableIterate's): use only C_0 … C_T of a taller stack, T known
 * on the device only; without it T = rows − 1.
 */
export function tableBackward(
  seed: tf.Tensor2D,
  points: tf.Tensor2D,
  counts: tf.Tensor2D,
  centroids: tf.Tensor2D,
  tau: number,
  steps?: tf.Tensor1D,
  rows?: tf.Tensor1D,
): tf.Tensor2D {
  checkTable(points, counts, 'tableBackward');
  checkRows(rows, 'tableBackward');
  if (centroids.rank !== 2 || centroids.shape[0] < 2) {
    throw new ShapeError(
      `tableBackward: centroids must be [T + 1 >= 2, K], got [${centroids.shape}]`,
    );
  }
  if (seed.rank !== 2 || seed.shape[0] !== 2 || seed.shape[1] !== centroids.shape[1]) {
    throw new ShapeError(
      `tableBackward: seed must be [2, ${centroids.shape[1]}], got [${seed.shape}]`,
    );
  }
  if (steps && (steps.rank !== 1 || steps.shape[0] !== 1))
    throw new ShapeError(`tableBackward: steps must be a float32 [1], got [${steps.shape}]`);
  if (steps && steps.dtype !== 'float32')
    throw new DTypeError(`tableBackward: steps must be a float32 [1], got ${steps.dtype}`);
  const attrs: TableBackwardAttrs = { tau };
  const inputs: tf.NamedTensorMap = { seed, points, counts, centroids };
  if (steps) inputs.steps = steps;
  if (rows) inputs.rows = rows;
  return tf
    .engine()
    .runKernel(
      TableKernelNames.TableBackward,
      inputs,
      attrs as unknown as tf.NamedAttrMap,
    ) as tf.Tensor2D;
}

/** Σ_i table[codeToRow[code(x_i)], :] · g_i → [C]; weights whose code has row −1 add nothing. */
export function codeContract(
  table: tf.Tensor2D,
  codeToRow: tf.Tensor1D,
  x: tf.Tensor1D,
  g: tf.Tensor1D,
  dtype: 'bf16' | 'fp16',
): tf.Tensor1D {
  if (table.rank !== 2)
    throw new ShapeError(`codeContract: table must be [U, C], got [${table.shape}]`);
  if (codeToRow.dtype !== 'int32' || codeToRow.shape[0] !== 65536) {
    throw new DTypeError(
      `codeContract: codeToRow must be int32 [65536], got ${codeToRow.dtype} [${codeToRow.shape}]`,
    );
  }
  if (x.rank !== 1 || g.rank !== 1 || x.shape[0] !== g.shape[0]) {
    throw new ShapeError(
      `codeContract: x and g must be 1-D of one length, got [${x.shape}] and [${g.shape}]`,
    );
  }
  return tf.engine().runKernel(TableKernelNames.CodeContract, { table, codeToRow, x, g }, {
    dtype,
  } as unknown as tf.NamedAttrMap) as tf.Tensor1D;
}

export interface SoftContractAttrs {
  dtype: 'bf16' | 'fp16';
  tau: number;
}

/** The backward seed [2K] straight from the weights and the upstream gradient; see TableKernelNames. */
export function softContract(
  x: tf.Tensor1D,
  g: tf.Tensor1D,
  lastCentroids: tf.Tensor2D,
  attrs: SoftContractAttrs,
): tf.Tensor1D {
  if (x.rank !== 1 || g.rank !== 1 || x.shape[0] !== g.shape[0]) {
    throw new ShapeError(
      `softContract: x and g must be 1-D of one length, got [${x.shape}] and [${g.shape}]`,
    );
  }
  if (lastCentroids.rank !== 2 || lastCentroids.shape[0] !== 2) {
    throw new ShapeError(
      `softContract: centroids must be [2, K] (C_{T-1}; C_T), got [${lastCentroids.shape}]`,
    );
  }
  return tf
    .engine()
    .runKernel(
      TableKernelNames.SoftContract,
      { x, g, centroids: lastCentroids },
      attrs as unknown as tf.NamedAttrMap,
    ) as tf.Tensor1D;
}

/** The attention row over centroids c of a value v, in float64. */
function softmaxRow(v: number, c: ArrayLike<number>, tau: number, out: Float64Array): void {
  let max = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < c.length; k++) {
    out[k] = -((v - c[k]) ** 2) / tau;
    if (out[k] > max) max = out[k];
  }
  let sum = 0;
  for (let k = 0; k < c.length; k++) {
    out[k] = Math.exp(out[k] - max);
    sum += out[k];
  }
  for (let k = 0; k < c.length; k++) out[k] /= sum;
}

/**
 * Logits this far below their row's largest contribute under e^-40 ≈ 4e-18 of it: nothing at
 * float32 precision, even summed over every weight of a tensor. The host iterations skip their exp.
 */
const NEGLIGIBLE_LOGIT = -40;

/** Float64 table math: the iterations and output (used by DKM) and the kernels' references. */
export const tableReference = {
  /**
   * Up to `iterations` centroid updates from c0 (stopping once no centroid moves more than
   * epsilon). Returns the float32 centroids C_0 … C_T ([(T + 1)·K]) and T.
   */
  iterate(
    points: Float32Array,
    counts: Float32Array,
    c0: Float32Array,
    attrs: TableIterateAttrs,
  ): { centroids: Float32Array; iterations: number } {
    const k = c0.length;
    const out = new Float32Array((attrs.iterations + 1) * k);
    out.set(c0, 0);
    const prev = new Float64Array(k);
    const num = new Float64Array(k);
    const mass = new Float64Array(k);
    const a = new Float64Array(k);
    const negInvTau = -1 / attrs.tau;
    let t = 1;
    for (; t <= attrs.iterations; t++) {
      for (let j = 0; j < k; j++) prev[j] = out[(t - 1) * k + j];
      num.fill(0);
      mass.fill(0);
      for (let i = 0; i < points.length; i++) {
        // the value's attention row (a max-shifted softmax), inlined: this loop is prepare()'s cost
        const v = points[i];
        let max = Number.NEGATIVE_INFINITY;
        for (let j = 0; j < k; j++) {
          const d = v - prev[j];
          const z = d * d * negInvTau;
          a[j] = z;
          if (z > max) max = z;
        }
        let sum = 0;
        for (let j = 0; j < k; j++) {
          // a term below e^-40 of the row's largest changes no float32 result: skip its exp
          const e = a[j] - max > NEGLIGIBLE_LOGIT ? Math.exp(a[j] - max) : 0;
          a[j] = e;
          sum += e;
        }
        const w = counts[i] / sum;
        const wv = w * v;
        for (let j = 0; j < k; j++) {
          mass[j] += w * a[j];
          num[j] += wv * a[j];
        }
      }
      let shift = 0;
      for (let j = 0; j < k; j++) {
        out[t * k + j] = num[j] / Math.max(mass[j], 1e-30);
        shift = Math.max(shift, Math.abs(out[t * k + j] - prev[j]));
      }
      if (attrs.epsilon > 0 && shift < attrs.epsilon) break;
    }
    const last = Math.min(t, attrs.iterations);
    return { centroids: out.slice(0, (last + 1) * k), iterations: last };
  },

  /** TableIterate's flat result (float64 math, float32 storage), laid out by tableIterateLayout. */
  iterateAll(
    allPoints: Float32Array,
    allCounts: Float32Array,
    c0: Float32Array,
    attrs: TableIterateAttrs,
    rows = allPoints.length,
  ): Float32Array {
    const k = c0.length;
    // rows past `rows` weigh 0 (a `rows` input, clamped to the table): left out, their outputs 0
    const points = allPoints.subarray(0, Math.min(allPoints.length, rows));
    const counts = allCounts.subarray(0, points.length);
    const layout = tableIterateLayout(allPoints.length, k, attrs.iterations);
    const out = new Float32Array(layout.size);
    const { centroids, iterations } = tableReference.iterate(points, counts, c0, attrs);
    out.set(centroids, layout.centroids);
    out[layout.steps] = iterations;
    out.set(centroids.subarray((iterations - 1) * k), layout.last);
    out.set(tableReference.output(points, centroids, k, attrs.tau), layout.output);
    return out;
  },

  /** W̃ per distinct value: A (from C_{T−1}) · C_T. */
  output(points: Float32Array, centroids: Float32Array, k: number, tau: number): Float32Array {
    const T = centroids.length / k - 1;
    const prev = Float64Array.from(centroids.subarray((T - 1) * k, T * k));
    const last = Float64Array.from(centroids.subarray(T * k, (T + 1) * k));
    const a = new Float64Array(k);
    const negInvTau = -1 / tau;
    const out = new Float32Array(points.length);
    for (let i = 0; i < points.length; i++) {
      const v = points[i];
      let max = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < k; j++) {
        const d = v - prev[j];
        a[j] = d * d * negInvTau;
        if (a[j] > max) max = a[j];
      }
      let sum = 0;
      let o = 0;
      for (let j = 0; j < k; j++) {
        const e = a[j] - max > NEGLIGIBLE_LOGIT ? Math.exp(a[j] - max) : 0;
        sum += e;
        o += e * last[j];
      }
      out[i] = o / sum;
    }
    return out;
  },

  /**
   * F [U, 2K] with seed = Σ_u F[u, :] · gu_u: A_out,uk and (2/τ) A_out,uk (C_T,k − out_u)(v_u − C_{T−1},k).
   */
  contraction(points: Float32Array, centroids: Float32Array, k: number, tau: number): Float32Array {
    const T = centroids.length / k - 1;
    const two = 2 / tau;
    const out = new Float32Array(points.length * 2 * k);
    const a = new Float64Array(k);
    for (let i = 0; i < points.length; i++) {
      softmaxRow(points[i], centroids.subarray((T - 1) * k, T * k), tau, a);
      let o = 0;
      for (let j = 0; j < k; j++) o += a[j] * centroids[T * k + j];
      for (let j = 0; j < k; j++) {
        out[i * 2 * k + j] = a[j];
        out[i * 2 * k + k + j] =
          two * a[j] * (centroids[T * k + j] - o) * (points[i] - centroids[(T - 1) * k + j]);
      }
    }
    return out;
  },

  /** seed [2K] from a per-value upstream gradient gu [U]: Σ_u F[u, :] · gu_u in float64. */
  seed(gu: Float32Array, contraction: Float32Array, k: number): Float32Array {
    const acc = new Float64Array(2 * k);
    for (let i = 0; i < gu.length; i++) {
      for (let c = 0; c < 2 * k; c++) acc[c] += contraction[i * 2 * k + c] * gu[i];
    }
    return Float32Array.from(acc);
  },

  /** Σ_i table[row(x_i)] · g_i in float64 (the CodeContract reference). */
  codeContract(
    table: Float32Array,
    c: number,
    codeToRow: Int32Array,
    codes: Uint16Array,
    g: Float32Array,
  ): Float32Array {
    const acc = new Float64Array(c);
    for (let i = 0; i < codes.length; i++) {
      const row = codeToRow[codes[i]];
      if (row < 0) continue;
      for (let j = 0; j < c; j++) acc[j] += table[row * c + j] * g[i];
    }
    return Float32Array.from(acc);
  },

  /** The SoftContract reference (float64); `values` are the rounded weights. */
  softContract(
    values: Float32Array,
    g: ArrayLike<number>,
    last: Float32Array,
    k: number,
    tau: number,
  ): Float32Array {
    const two = 2 / tau;
    const acc = new Float64Array(2 * k);
    const a = new Float64Array(k);
    const prev = last.subarray(0, k);
    for (let i = 0; i < values.length; i++) {
      softmaxRow(values[i], prev, tau, a);
      let o = 0;
      for (let j = 0; j < k; j++) o += a[j] * last[k + j];
      for (let j = 0; j < k; j++) {
        acc[j] += a[j] * g[i];
        acc[k + j] += two * a[j] * (last[k + j] - o) * (values[i] - prev[j]) * g[i];
      }
    }
    return Float32Array.from(acc);
  },

  /**
   * SoftContract for host kernels (the cpu and wasm plugins): every term depends on a weight only
   * through its 16-bit code, so the upstream gradient is summed per code first (O(N), float64) and
   * the attention is computed once per present code (≤ 65,536 × K), not once per weight.
   */
  softContractByCode(
    codes: Uint16Array,
    g: Float32Array,
    last: Float32Array,
    k: number,
    dtype: HalfDtype,
    tau: number,
  ): Float32Array {
    const gByCode = new Float64Array(65536);
    const present = new Uint8Array(65536);
    for (let i = 0; i < codes.length; i++) {
      gByCode[codes[i]] += g[i];
      present[codes[i]] = 1;
    }
    const presentCodes: number[] = [];
    for (let c = 0; c < 65536; c++) if (present[c]) presentCodes.push(c);
    return tableReference.softContract(
      fromHalfBits(Uint16Array.from(presentCodes), dtype),
      Float64Array.from(presentCodes, (c) => gByCode[c]),
      last,
      k,
      tau,
    );
  },

  /** The TableBackward reference: [U, 4] = J, h, 0, 0. */
  backward(
    seed: Float32Array,
    points: Float32Array,
    counts: Float32Array,
    centroids: Float32Array,
    k: number,
    tau: number,
    rows = points.length,
  ): Float32Array {
    if (rows < points.length) {
      // rows past `rows` weigh 0 (a `rows` input; one past the table changes nothing): left out,
      // their J and h 0
      const out = new Float32Array(points.length * 4);
      out.set(
        tableReference.backward(
          seed,
          points.subarray(0, rows),
          counts.subarray(0, rows),
          centroids,
          k,
          tau,
        ),
      );
      return out;
    }
    const u = points.length;
    const T = centroids.length / k - 1;
    const c = (t: number, j: number) => centroids[t * k + j];
    const two = 2 / tau;
    const out = new Float32Array(u * 4);
    const a = new Float64Array(k);
    for (let i = 0; i < u; i++) {
      softmaxRow(points[i], centroids.subarray((T - 1) * k, T * k), tau, a);
      let o = 0;
      let ch = 0;
      for (let j = 0; j < k; j++) {
        o += a[j] * c(T, j);
        ch += a[j] * c(T - 1, j);
      }
      let jac = 0;
      for (let j = 0; j < k; j++) jac += a[j] * (c(T, j) - o) * (c(T - 1, j) - ch);
      out[i * 4] = two * jac;
    }
    let dC = Float64Array.from(seed.subarray(0, k));
    const dCout = seed.subarray(k, 2 * k);
    const h = new Float64Array(u);
    for (let t = T; t >= 1; t--) {
      const prev = centroids.subarray((t - 1) * k, t * k);
      const mass = new Float64Array(k);
      for (let i = 0; i < u; i++) {
        softmaxRow(points[i], prev, tau, a);
        for (let j = 0; j < k; j++) mass[j] += counts[i] * a[j];
      }
      const dNum = dC.map((x, j) => x / Math.max(mass[j], 1e-30));
      const next = new Float64Array(k);
      for (let i = 0; i < u; i++) {
        softmaxRow(points[i], prev, tau, a);
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
      dC = t === T ? next.map((x, j) => x + dCout[j]) : next;
    }
    for (let i = 0; i < u; i++) out[i * 4 + 1] = h[i];
    return out;
  },
};
