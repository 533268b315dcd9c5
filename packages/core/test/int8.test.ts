import { describe, expect, it } from 'vitest';
import '@edkm/backend-cpu';
import {
  int8DotNT,
  int8MatMul,
  int8MatMulNT,
  int8MatMulPacked,
  int8Tensor,
  packInt8,
  seededRandom,
  tf,
  unpackInt8,
  useBackend,
} from '../src/index';

/** The definition: three plain loops, no blocking. */
function naive(a: Int8Array, b: Int8Array, m: number, n: number, k: number): Int32Array {
  const c = new Int32Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t] * b[j * k + t];
      c[i * n + j] = s;
    }
  return c;
}

function randomInt8(len: number, seed: number): Int8Array {
  const r = seededRandom(seed);
  const out = new Int8Array(len);
  for (let i = 0; i < len; i++) out[i] = Math.floor(r() * 256) - 128;
  return out;
}

describe('int8MatMulNT (C = A·Bᵀ, int8 → int32)', () => {
  it.each([
    [1, 1, 1],
    [3, 5, 7],
    [16, 16, 32],
    [17, 9, 33],
    [8, 13, 100],
  ])('matches the triple loop on random data, %i×%i×%i', (m, n, k) => {
    const a = randomInt8(m * k, m * 1000 + k);
    const b = randomInt8(n * k, n * 1000 + k + 1);
    const c = int8MatMulNT(a, b, m, n, k);
    expect(c).toEqual(naive(a, b, m, n, k));
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) expect(int8DotNT(a, b, k, i, j)).toBe(c[i * n + j]);
  });

  it('is exact at the edge values −128 and 127 over a long K', () => {
    const k = 11008;
    const a = new Int8Array(2 * k);
    const b = new Int8Array(3 * k);
    a.fill(-128, 0, k); // row 0: all −128
    a.fill(127, k); // row 1: all 127
    b.fill(-128, 0, k); // row 0: all −128
    b.fill(127, k, 2 * k); // row 1: all 127
    for (let t = 0; t < k; t++) b[2 * k + t] = t % 2 ? 127 : -128; // row 2: alternating
    const c = int8MatMulNT(a, b, 2, 3, k);
    expect(Array.from(c)).toEqual([
      16384 * k,
      -128 * 127 * k,
      (k / 2) * (16384 - 128 * 127),
      -128 * 127 * k,
      16129 * k,
      (k / 2) * (-128 * 127 + 16129),
    ]);
    expect(c).toEqual(naive(a, b, 2, 3, k));
  });

  it('wraps to int32 like an int32 accumulator past 2^31', () => {
    const k = 2 ** 17 + 4; // 16384·k > 2^31
    const a = new Int8Array(k).fill(-128);
    const c = int8MatMulNT(a, a, 1, 1, k);
    expect(c[0]).toBe((16384 * k) | 0);
    expect(int8DotNT(a, a, k, 0, 0)).toBe((16384 * k) | 0);
  });

  it('rejects operands of the wrong length', () => {
    expect(() => int8MatMulNT(new Int8Array(5), new Int8Array(6), 2, 2, 3)).toThrow(/A has 5/);
    expect(() => int8MatMulNT(new Int8Array(6), new Int8Array(5), 2, 2, 3)).toThrow(/B has 5/);
  });
});

describe('packed int8 operands (EdkmInt8MatMul)', () => {
  it('packs four values a word, little-endian, rows padded with zeros', () => {
    const w = packInt8([1, -1, 127, -128, 5], 1, 5);
    expect(Array.from(w)).toEqual([(0x80 << 24) | (0x7f << 16) | (0xff << 8) | 1, 5]);
    expect(Array.from(unpackInt8(w))).toEqual([1, -1, 127, -128, 5, 0, 0, 0]);
    expect(() => packInt8([128], 1, 1)).toThrow(/not an int8/);
    expect(() => packInt8([1, 2], 1, 3)).toThrow(/not 1×3/);
  });

  it('the packed product is int8MatMulNT of the unpacked rows', () => {
    const [m, n, k] = [5, 6, 11];
    const a = randomInt8(m * k, 3);
    const b = randomInt8(n * k, 4);
    const w = Math.ceil(k / 4);
    expect(int8MatMulPacked(packInt8(a, m, k), packInt8(b, n, k), m, n, w)).toEqual(
      int8MatMulNT(a, b, m, n, k),
    );
    expect(() => int8MatMulPacked(new Int32Array(3), new Int32Array(6), m, n, w)).toThrow(
      /not 5×3/,
    );
  });

  it('int8MatMul runs the kernel (cpu) and checks its operands', async () => {
    await useBackend('cpu');
    const a = randomInt8(3 * 9, 5);
    const b = randomInt8(4 * 9, 6);
    const ta = int8Tensor(a, 3, 9);
    const tb = int8Tensor(b, 4, 9);
    const c = int8MatMul(ta, tb);
    expect([c.shape, c.dtype]).toEqual([[3, 4], 'int32']);
    expect(Int32Array.from(await c.data())).toEqual(int8MatMulNT(a, b, 3, 4, 9));
    expect(() => int8MatMul(ta, tf.zeros([4, 2], 'int32') as tf.Tensor2D)).toThrow(/row widths/);
    expect(() => int8MatMul(ta, tf.zeros([4, 3]) as tf.Tensor2D)).toThrow(/int32/);
    tf.dispose([ta, tb, c]);
  });
});
