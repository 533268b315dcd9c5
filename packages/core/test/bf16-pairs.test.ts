import { describe, expect, it } from 'vitest';
import {
  bf16Gemv,
  decodeBf16Pairs,
  fromHalfBits,
  linearReference,
  seededRandom,
  toHalfBits,
} from '../src/index';

describe('bf16 pairs on the host', () => {
  const rnd = seededRandom(3);
  const values = Float32Array.from({ length: 61 }, () => rnd() * 4 - 2);
  const halves = toHalfBits(values, 'bf16');
  const padded = new Uint16Array(halves.length + 1);
  padded.set(halves);
  const words = new Uint32Array(padded.buffer);
  const dense = fromHalfBits(halves, 'bf16');

  it.each([
    [0, 61],
    [1, 60],
    [3, 7],
    [4, 1],
    [5, 1],
    [2, 0],
  ])(
    'decodeBf16Pairs from element %i, %i of them (odd and even starts and ends)',
    (start, count) => {
      const out = new Float32Array(count);
      decodeBf16Pairs(words, start, count, out);
      expect(Array.from(out)).toEqual(Array.from(dense.subarray(start, start + count)));
    },
  );

  it.each([
    [1, 6, 10],
    [3, 5, 12],
    [2, 4, 15], // odd K: rows start on odd elements
  ])('bf16Gemv m=%i n=%i k=%i equals the float64 reference', (m, n, k) => {
    const w = toHalfBits(
      Float32Array.from({ length: n * k }, () => rnd() * 2 - 1),
      'bf16',
    );
    const wp = new Uint16Array(w.length + (w.length & 1));
    wp.set(w);
    const x = Float32Array.from({ length: m * k }, () => rnd() * 2 - 1);
    const y = new Float32Array(m * n);
    bf16Gemv(new Uint32Array(wp.buffer), x, m, n, k, y);
    const expected = linearReference.bf16MatMul(x, m, w, n, k);
    for (let i = 0; i < y.length; i++) expect(Math.abs(y[i] - expected[i])).toBeLessThan(1e-5);
  });
});
