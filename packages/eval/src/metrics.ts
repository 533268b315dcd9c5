/** Arithmetic mean (0 for no items). */
export function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return xs.length ? s / xs.length : 0;
}

/**
 * The harness's `mean_stderr`: sample standard deviation (n − 1 in the denominator) over √n.
 * `null` for fewer than two items (the harness prints "N/A").
 */
export function meanStderr(xs: ArrayLike<number>): number | null {
  const n = xs.length;
  if (n < 2) return null;
  const mu = mean(xs);
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (xs[i] - mu) ** 2;
  return Math.sqrt(ss / (n - 1)) / Math.sqrt(n);
}

/** `np.argmax`: index of the first maximum (a NaN counts as the maximum, as in NumPy). */
export function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 0; i < xs.length; i++) {
    if (Number.isNaN(xs[i])) return i;
    if (xs[i] > xs[best]) best = i;
  }
  return best;
}
