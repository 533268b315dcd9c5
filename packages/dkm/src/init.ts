import { InvalidArgumentError, seededRandom } from '@edkm/core';

/**
 * Initial centroids from weighted points (`values` U×d row-major, `weights` = occurrence counts).
 * k-means++ (D² sampling, on at most `sampleSize` points drawn by weight) or weighted quantiles
 * of the first coordinate. Returns K×d. Duplicated centroids are nudged apart so that every
 * cluster can receive mass.
 */
export function initCentroids(
  values: Float32Array,
  weights: ArrayLike<number>,
  d: number,
  k: number,
  method: 'kmeans++' | 'quantiles',
  seed: number,
  sampleSize = 4096,
): Float32Array {
  const u = weights.length;
  if (u === 0) throw new InvalidArgumentError('cannot initialise centroids of an empty tensor');
  // canonical order (lexicographic by value), so that the result does not depend on input order
  const order = Array.from({ length: u }, (_, i) => i).sort((a, b) => {
    for (let j = 0; j < d; j++) {
      const diff = values[a * d + j] - values[b * d + j];
      if (diff !== 0) return diff;
    }
    return 0;
  });
  values = Float32Array.from(
    { length: u * d },
    (_, i) => values[order[Math.floor(i / d)] * d + (i % d)],
  );
  weights = Float32Array.from(order, (i) => weights[i]);
  const random = seededRandom(seed);
  const out = new Float32Array(k * d);
  if (method === 'quantiles') {
    const order = Array.from({ length: u }, (_, i) => i).sort(
      (a, b) => values[a * d] - values[b * d],
    );
    let total = 0;
    for (let i = 0; i < u; i++) total += weights[i];
    let acc = 0;
    let j = 0;
    for (let c = 0; c < k; c++) {
      const target = ((c + 0.5) / k) * total;
      while (j < u - 1 && acc + weights[order[j]] < target) acc += weights[order[j++]];
      out.set(values.subarray(order[j] * d, order[j] * d + d), c * d);
    }
  } else {
    // draw a weighted sample of distinct points, then D² sampling on it
    const cumulative = new Float64Array(u);
    let total = 0;
    for (let i = 0; i < u; i++) cumulative[i] = total += weights[i];
    const m = Math.min(sampleSize, u);
    const sample: number[] = [];
    if (m === u) for (let i = 0; i < u; i++) sample.push(i);
    else for (let s = 0; s < m; s++) sample.push(lowerBound(cumulative, random() * total));
    const sampleWeight = sample.map((i) => (m === u ? weights[i] : 1));
    const dist = new Float64Array(sample.length).fill(Number.POSITIVE_INFINITY);
    let chosen = sample[pickWeighted(sampleWeight, random)];
    for (let c = 0; c < k; c++) {
      out.set(values.subarray(chosen * d, chosen * d + d), c * d);
      let sum = 0;
      for (let s = 0; s < sample.length; s++) {
        let dd = 0;
        for (let b = 0; b < d; b++) {
          const diff = values[sample[s] * d + b] - out[c * d + b];
          dd += diff * diff;
        }
        if (dd < dist[s]) dist[s] = dd;
        sum += dist[s] * sampleWeight[s];
      }
      if (c + 1 < k) {
        chosen =
          sum > 0
            ? sample[
                pickWeighted(
                  Array.from(dist, (x, s) => x * sampleWeight[s]),
                  random,
                )
              ]
            : sample[Math.floor(random() * sample.length)];
      }
    }
  }
  separateDuplicates(out, d, values, weights);
  return out;
}

function lowerBound(cumulative: Float64Array, x: number): number {
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cumulative[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function pickWeighted(w: ArrayLike<number>, random: () => number): number {
  let total = 0;
  for (let i = 0; i < w.length; i++) total += w[i];
  let x = random() * total;
  for (let i = 0; i < w.length; i++) {
    x -= w[i];
    if (x < 0) return i;
  }
  return w.length - 1;
}

/** Moves exact duplicate centroids apart by a small fraction of the data's spread. */
function separateDuplicates(
  c: Float32Array,
  d: number,
  values: Float32Array,
  weights: ArrayLike<number>,
): void {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < weights.length * d; i++) {
    if (values[i] < lo) lo = values[i];
    if (values[i] > hi) hi = values[i];
  }
  const step = (hi - lo || Math.abs(hi) || 1) * 1e-3;
  const k = c.length / d;
  const seen = new Set<string>();
  for (let i = 0; i < k; i++) {
    let key = c.subarray(i * d, i * d + d).join(',');
    let bump = 1;
    while (seen.has(key)) {
      for (let b = 0; b < d; b++) c[i * d + b] += step * bump;
      key = c.subarray(i * d, i * d + d).join(',');
      bump++;
    }
    seen.add(key);
  }
}
