import { seededRandom } from '@edkm/core';
import type { JlcmGrouping } from './config';

/** Neurons (rows) grouped by codebook, in the stored order of the export. */
export interface RowGroups {
  /** Original row of each stored row (a permutation of 0..rows-1). */
  permutation: Int32Array;
  /** Rows per group (codebook), in stored order. */
  groupRows: number[];
  /** Group of each original row. */
  groupOf: Int32Array;
}

/** Quantiles per row in the 'profile' grouping. */
const PROFILE_POINTS = 16;
const PROFILE_ITERATIONS = 25;

/**
 * Groups the rows of w [rows, cols] into `groups` codebooks of at least `minRows` rows each.
 * Rows are first normalised by their max |w| when `normalise` (per-channel scaling removes the
 * scale, so what distinguishes rows is the shape of their distribution), then:
 * 'profile': k-means (k-means++ seeded) over each row's sorted-quantile profile;
 * 'spread': rows sorted by standard deviation, cut into equal groups;
 * 'none': rows in order, cut into equal contiguous groups.
 * Groups are ordered by increasing spread and keep their rows in ascending original order.
 */
export function groupRows(
  w: Float32Array,
  rows: number,
  cols: number,
  groups: number,
  grouping: JlcmGrouping,
  opts: { normalise: boolean; minRows: number; seed: number },
): RowGroups {
  if (grouping === 'none' || groups === 1) {
    return fromGroupOf(
      balancedGroupOf(
        Int32Array.from({ length: rows }, (_, r) => r),
        groups,
      ),
      [...Array(groups).keys()],
    );
  }
  if (grouping === 'spread') {
    const spread = rowSpread(w, rows, cols, opts.normalise);
    const order = Int32Array.from({ length: rows }, (_, r) => r).sort(
      (a, b) => spread[a] - spread[b] || a - b,
    );
    return fromGroupOf(balancedGroupOf(order, groups), [...Array(groups).keys()]);
  }
  const profiles = rowProfiles(w, rows, cols, opts.normalise);
  const p = profiles.length / rows;
  const { groupOf, centres } = kmeansRows(profiles, rows, p, groups, opts.minRows, opts.seed);
  const centreSpread = Array.from({ length: groups }, (_, g) => rms(centres, g * p, p));
  const order = [...Array(groups).keys()].sort(
    (a, b) => centreSpread[a] - centreSpread[b] || a - b,
  );
  return fromGroupOf(groupOf, order);
}

/** Standard deviation of every row (of w / max|w| when normalising). */
function rowSpread(w: Float32Array, rows: number, cols: number, normalise: boolean): Float64Array {
  return Float64Array.from({ length: rows }, (_, r) => {
    let sum = 0;
    let sumSq = 0;
    let max = 0;
    for (let c = 0; c < cols; c++) {
      const x = w[r * cols + c];
      sum += x;
      sumSq += x * x;
      max = Math.max(max, Math.abs(x));
    }
    const std = Math.sqrt(Math.max(sumSq / cols - (sum / cols) ** 2, 0));
    return normalise && max > 0 ? std / max : std;
  });
}

/** Sorted-quantile profile of every row: [rows, min(16, cols)], of w / max|w| when normalising. */
function rowProfiles(w: Float32Array, rows: number, cols: number, normalise: boolean) {
  const p = Math.min(PROFILE_POINTS, cols);
  const out = new Float64Array(rows * p);
  const sorted = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    let max = 0;
    for (let c = 0; c < cols; c++) {
      sorted[c] = w[r * cols + c];
      max = Math.max(max, Math.abs(sorted[c]));
    }
    const scale = normalise && max > 0 ? 1 / max : 1;
    sorted.sort();
    for (let q = 0; q < p; q++) out[r * p + q] = scale * sorted[Math.floor(((q + 0.5) * cols) / p)];
  }
  return out;
}

function rms(values: Float64Array, from: number, n: number): number {
  let s = 0;
  for (let i = from; i < from + n; i++) s += values[i] * values[i];
  return Math.sqrt(s / n);
}

function sqDistance(a: Float64Array, i: number, b: Float64Array, j: number, p: number): number {
  let s = 0;
  for (let q = 0; q < p; q++) s += (a[i + q] - b[j + q]) ** 2;
  return s;
}

/**
 * k-means of `rows` points of dimension p into k clusters (k-means++ start, Lloyd iterations),
 * then rows moved into any cluster smaller than `minRows` (the nearest rows of clusters that can
 * spare one).
 */
function kmeansRows(
  points: Float64Array,
  rows: number,
  p: number,
  k: number,
  minRows: number,
  seed: number,
): { groupOf: Int32Array; centres: Float64Array } {
  const random = seededRandom(seed);
  const centres = new Float64Array(k * p);
  const nearest = new Float64Array(rows).fill(Number.POSITIVE_INFINITY);
  let chosen = Math.floor(random() * rows);
  for (let g = 0; g < k; g++) {
    centres.set(points.subarray(chosen * p, chosen * p + p), g * p);
    let total = 0;
    for (let r = 0; r < rows; r++) {
      nearest[r] = Math.min(nearest[r], sqDistance(points, r * p, centres, g * p, p));
      total += nearest[r];
    }
    let x = random() * total - nearest[0];
    chosen = 0;
    while (chosen < rows - 1 && x >= 0) x -= nearest[++chosen];
  }
  const groupOf = new Int32Array(rows);
  const size = new Int32Array(k);
  const assign = () => {
    size.fill(0);
    for (let r = 0; r < rows; r++) {
      let best = Number.POSITIVE_INFINITY;
      for (let g = 0; g < k; g++) {
        const dist = sqDistance(points, r * p, centres, g * p, p);
        if (dist < best) {
          best = dist;
          groupOf[r] = g;
        }
      }
      size[groupOf[r]]++;
    }
  };
  for (let it = 0; it < PROFILE_ITERATIONS; it++) {
    assign();
    const sums = new Float64Array(k * p);
    for (let r = 0; r < rows; r++)
      for (let q = 0; q < p; q++) sums[groupOf[r] * p + q] += points[r * p + q];
    for (let g = 0; g < k; g++)
      if (size[g] > 0) for (let q = 0; q < p; q++) centres[g * p + q] = sums[g * p + q] / size[g];
  }
  assign();
  for (;;) {
    let small = -1;
    for (let g = 0; g < k; g++)
      if (size[g] < minRows && (small < 0 || size[g] < size[small])) small = g;
    if (small < 0) break;
    let best = -1;
    let bestDist = Number.POSITIVE_INFINITY;
    for (let r = 0; r < rows; r++) {
      if (groupOf[r] === small || size[groupOf[r]] <= minRows) continue;
      const dist = sqDistance(points, r * p, centres, small * p, p);
      if (dist < bestDist) {
        bestDist = dist;
        best = r;
      }
    }
    size[groupOf[best]]--;
    groupOf[best] = small;
    size[small]++;
  }
  return { groupOf, centres };
}

/** Rows in the given order cut into `groups` contiguous parts of sizes differing by at most one. */
function balancedGroupOf(order: Int32Array, groups: number): Int32Array {
  const groupOf = new Int32Array(order.length);
  for (let g = 0; g < groups; g++) {
    const from = Math.floor((g * order.length) / groups);
    const to = Math.floor(((g + 1) * order.length) / groups);
    for (let i = from; i < to; i++) groupOf[order[i]] = g;
  }
  return groupOf;
}

/** Stored order: groups in `order`, rows ascending within each; groups renumbered by that order. */
function fromGroupOf(groupOf: Int32Array, order: number[]): RowGroups {
  const rank = new Int32Array(order.length);
  order.forEach((g, i) => {
    rank[g] = i;
  });
  const renumbered = groupOf.map((g) => rank[g]);
  const groupRows = new Array<number>(order.length).fill(0);
  for (const g of renumbered) groupRows[g]++;
  const permutation = Int32Array.from({ length: groupOf.length }, (_, r) => r).sort(
    (a, b) => renumbered[a] - renumbered[b] || a - b,
  );
  return { permutation, groupRows, groupOf: renumbered };
}
