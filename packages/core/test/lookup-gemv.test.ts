import { describe, expect, it } from 'vitest';
import { linearReference, lookupGemv, lookupPlan, seededRandom } from '../src/index';
import { type PaletteCase, randomPalette } from '../src/testing/linear-cases';

// y = x · Wᵀ by table lookup (T-MAC style) against dequantize-then-multiply in float64
describe('lookupGemv', () => {
  const cases: (PaletteCase & { why: string })[] = [
    {
      m: 1,
      n: 300,
      k: 64,
      bits: 3,
      why: 'decode, 3 bits: pairs of indices (16 codes per 3 words)',
    },
    { m: 1, n: 300, k: 96, bits: 1, why: '1 bit: runs of 6 (16 codes per 3 words)' },
    { m: 1, n: 300, k: 66, bits: 2, why: '2 bits: triples' },
    { m: 3, n: 200, k: 60, bits: 1, why: '1 bit: runs of 6, three x rows' },
    {
      m: 2,
      n: 9,
      k: 20,
      bits: 3,
      groups: [4, 5],
      scales: true,
      permute: true,
      why: 'rows off word boundaries, two LUT groups, scales, a permutation',
    },
    { m: 1, n: 13, k: 18, bits: 2, groups: [13], why: 'K a multiple of 3 and 2' },
  ];
  it.each(cases)('$why (m=$m n=$n k=$k bits=$bits)', (c) => {
    const w = randomPalette(c, 11 + c.n);
    const rnd = seededRandom(c.k);
    const x = Float32Array.from({ length: c.m * c.k }, () => rnd() * 2 - 1);
    const expected = linearReference.paletteMatMul(x, c.m, w);
    // the plan itself, as the kernels would take it, with the table-size rule waived
    const groups = w.lut.length / 2 ** c.bits;
    const g = [6, 5, 4, 3, 2].find((g) => g * c.bits <= 6 && c.k % g === 0) as number;
    const plan = lookupPlan(w, c.m, groups) ?? { g, p: 2 ** (g * c.bits) };
    expect(plan.g).toBe(g);
    const y = new Float32Array(c.m * c.n);
    lookupGemv(x, c.m, w, plan, y);
    let max = 1;
    for (const v of expected) max = Math.max(max, Math.abs(v));
    for (let i = 0; i < y.length; i++)
      expect(Math.abs(y[i] - expected[i])).toBeLessThan(1e-6 * c.k * max);
  });

  it('is planned only where the tables pay: 1–3 bits, d = 1, few x rows, fewer table entries than rows', () => {
    const w = (n: number, k: number, bits: number, clusterDim = 1) => ({
      shape: [n, k] as [number, number],
      bits,
      clusterDim,
    });
    expect(lookupPlan(w(4096, 4096, 3), 1, 1)).toEqual({ g: 2, p: 64 });
    expect(lookupPlan(w(4096, 4096, 2), 1, 1)).toEqual({ g: 2, p: 16 }); // 4096 has no factor 3
    expect(lookupPlan(w(4096, 4095, 2), 1, 1)).toEqual({ g: 3, p: 64 });
    expect(lookupPlan(w(4096, 4096, 4), 1, 1)).toBeUndefined(); // 4 bits: a pair is 256 codes
    expect(lookupPlan(w(4096, 4096, 3, 2), 1, 1)).toBeUndefined(); // vectors
    expect(lookupPlan(w(4096, 4096, 3), 9, 1)).toBeUndefined(); // prefill: W decoded once is cheaper
    expect(lookupPlan(w(63, 4096, 3), 1, 1)).toBeUndefined(); // more table entries than rows
    expect(lookupPlan(w(480, 288, 3), 1, 3)).toEqual({ g: 2, p: 64 }); // a stacked QKV: 3 LUTs
    expect(lookupPlan(w(4096, 4097, 3), 1, 1)).toBeUndefined(); // K prime to 2
  });
});
