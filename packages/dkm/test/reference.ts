/** Plain float64 DKM (the reference of the reference): W̃ for points [M, d] from a fixed C_0. */
export function dkmReference(
  points: ArrayLike<number>,
  d: number,
  c0: ArrayLike<number>,
  tau: number,
  iterations: number,
): Float64Array {
  const m = points.length / d;
  const k = c0.length / d;
  let c = Float64Array.from(c0);
  const a = new Float64Array(m * k);
  for (let t = 1; t <= iterations; t++) {
    for (let i = 0; i < m; i++) {
      let max = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < k; j++) {
        let dist = 0;
        for (let b = 0; b < d; b++) dist += (points[i * d + b] - c[j * d + b]) ** 2;
        a[i * k + j] = -dist / tau;
        max = Math.max(max, a[i * k + j]);
      }
      let sum = 0;
      for (let j = 0; j < k; j++) {
        a[i * k + j] = Math.exp(a[i * k + j] - max);
        sum += a[i * k + j];
      }
      for (let j = 0; j < k; j++) a[i * k + j] /= sum;
    }
    const next = new Float64Array(k * d);
    const mass = new Float64Array(k);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < k; j++) {
        mass[j] += a[i * k + j];
        for (let b = 0; b < d; b++) next[j * d + b] += a[i * k + j] * points[i * d + b];
      }
    }
    for (let j = 0; j < k * d; j++) next[j] /= Math.max(mass[Math.floor(j / d)], 1e-300);
    c = next;
  }
  // W̃ = A_T C_T: the last attention (from C_{T−1}) with the last centroids
  const out = new Float64Array(m * d);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < k; j++)
      for (let b = 0; b < d; b++) out[i * d + b] += a[i * k + j] * c[j * d + b];
  }
  return out;
}
