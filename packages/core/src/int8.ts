/**
 * Exact int8 matrix products on the host: the reference that int8 GPU kernels (tensor-core GEMMs
 * through WebGPU's subgroup matrices) are checked against. Each product is at most 2^14 in
 * magnitude, so the sums are exact in JavaScript numbers (below 2^53) and are wrapped to int32 on
 * the way out, like an int32 accumulator (no wrap happens below K = 2^17).
 */

/** Σₖ a[i·k + t]·b[j·k + t]: row i of A (M×K) with row j of B (N×K), both row-major int8. */
export function int8DotNT(a: Int8Array, b: Int8Array, k: number, i: number, j: number): number {
  let s = 0;
  const ai = i * k;
  const bj = j * k;
  for (let t = 0; t < k; t++) s += a[ai + t] * b[bj + t];
  return s | 0;
}

/**
 * C = A·Bᵀ in int32, A M×K and B N×K row-major int8 (B is a weight matrix stored the way a
 * linear layer's is); C is M×N row-major. Four rows of B at a time so each A row is read once per
 * four outputs.
 */
export function int8MatMulNT(
  a: Int8Array,
  b: Int8Array,
  m: number,
  n: number,
  k: number,
): Int32Array {
  if (a.length !== m * k) throw new Error(`int8MatMulNT: A has ${a.length} values, not ${m}×${k}`);
  if (b.length !== n * k) throw new Error(`int8MatMulNT: B has ${b.length} values, not ${n}×${k}`);
  const c = new Int32Array(m * n);
  for (let i = 0; i < m; i++) {
    const ai = i * k;
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const b0 = j * k;
      const b1 = b0 + k;
      const b2 = b1 + k;
      const b3 = b2 + k;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let t = 0; t < k; t++) {
        const x = a[ai + t];
        s0 += x * b[b0 + t];
        s1 += x * b[b1 + t];
        s2 += x * b[b2 + t];
        s3 += x * b[b3 + t];
      }
      c[i * n + j] = s0;
      c[i * n + j + 1] = s1;
      c[i * n + j + 2] = s2;
      c[i * n + j + 3] = s3;
    }
    for (; j < n; j++) c[i * n + j] = int8DotNT(a, b, k, i, j);
  }
  return c;
}
