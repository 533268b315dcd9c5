import { describe, expect, it } from 'vitest';
import '@edkm/backend-cpu';
import {
  INT8_TENSOR_CORE_PADDING,
  decodeReference,
  disposePackedWeight,
  fromHalfBits,
  int8MatMulPacked,
  int8PackedShape,
  int8RescaleHost,
  linearReference,
  packedMatMulW8A8,
  paletteInt8Host,
  quantizeRowsHost,
  roundEven,
  seededRandom,
  splitMatMul,
  tf,
  toHalfBits,
  unpackInt8,
  uploadPaletteWeight,
  useBackend,
} from '../src/index';
import { randomPalette } from '../src/testing/linear-cases';

const normal = (rnd: () => number) => (rnd() + rnd() + rnd() + rnd() - 2) * 1.7;

describe('int8 linear building blocks (host definitions)', () => {
  it('roundEven rounds ties to even', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6].map(roundEven)).toEqual([0, 2, 2, -0, -2, 2, -3]);
  });

  it('slices 1: each value within half a step of x, the row max on ±127', () => {
    const rnd = seededRandom(1);
    const m = 4;
    const k = 37;
    const x = Float32Array.from({ length: m * k }, () => normal(rnd));
    const q = quantizeRowsHost(x, m, k, 1);
    const v = unpackInt8(q.hi);
    const w = Math.ceil(k / 4) * 4;
    for (let r = 0; r < m; r++) {
      let amax = 0;
      for (let t = 0; t < k; t++) amax = Math.max(amax, Math.abs(x[r * k + t]));
      expect(q.scale[r]).toBeCloseTo(amax / 127, 7);
      for (let t = 0; t < k; t++)
        expect(Math.abs(x[r * k + t] - q.scale[r] * v[r * w + t])).toBeLessThanOrEqual(
          q.scale[r] * 0.5 * (1 + 1e-5),
        );
      expect(Math.max(...Array.from(v.subarray(r * w, r * w + k), Math.abs))).toBe(127);
      for (let t = k; t < w; t++) expect(v[r * w + t]).toBe(0); // padding
    }
  });

  it('slices 2: scale · (hi + lo/256) within scale/512 of x (the high slice is slices 1)', () => {
    const rnd = seededRandom(2);
    const m = 3;
    const k = 64;
    const x = Float32Array.from({ length: m * k }, () => normal(rnd) * 10 ** (rnd() * 4 - 2));
    const q = quantizeRowsHost(x, m, k, 2);
    expect(q.hi).toEqual(quantizeRowsHost(x, m, k, 1).hi);
    const hi = unpackInt8(q.hi);
    const lo = unpackInt8(q.lo as Int32Array);
    for (let r = 0; r < m; r++) {
      const s = q.scale[r];
      for (let t = 0; t < k; t++) {
        const i = r * k + t;
        expect(Math.abs(x[i] - s * (hi[i] + lo[i] / 256))).toBeLessThanOrEqual(
          (s / 512) * (1 + 1e-3),
        );
      }
    }
  });

  it('PaletteInt8: the int8 rows, in output order, within half a step of the dequantized weight', () => {
    const h = randomPalette(
      { m: 1, n: 10, k: 24, bits: 3, groups: [4, 6], scales: true, permute: true },
      5,
    );
    const { b, sb } = paletteInt8Host(h);
    const w = linearReference.dequantize(h);
    const q = unpackInt8(b);
    for (let o = 0; o < 10; o++)
      for (let t = 0; t < 24; t++)
        expect(Math.abs(w[o * 24 + t] - sb[o] * q[o * 24 + t])).toBeLessThanOrEqual(
          sb[o] * 0.5 * (1 + 1e-5),
        );
  });
});

describe('packedMatMulW8A8 and splitMatMul (cpu plugin)', () => {
  it('W8A8: the composition of the host definitions, and within 2% of the exact product', async () => {
    await useBackend('cpu');
    const m = 6;
    const n = 20;
    const k = 64;
    const h = randomPalette({ m, n, k, bits: 3, scales: true, permute: true }, 11);
    const rnd = seededRandom(12);
    const x = Float32Array.from({ length: m * k }, () => normal(rnd));
    const g = Float32Array.from({ length: k }, () => 0.5 + rnd());
    const residual = Float32Array.from({ length: m * n }, () => rnd() - 0.5);
    const w = uploadPaletteWeight(h);
    const [xt, gt, rt] = [tf.tensor2d(x, [m, k]), tf.tensor1d(g), tf.tensor2d(residual, [m, n])];
    const y = await packedMatMulW8A8(xt, w, {
      rmsNorm: { weight: gt, eps: 1e-5 },
      residual: rt,
    }).data();
    tf.dispose([xt, gt, rt]);
    disposePackedWeight(w);
    // the definition, step by step
    const xn = decodeReference.rmsNorm(x, k, g, 1e-5);
    // (both operands padded to the tensor cores' tiles: 128 rows, K to 128 bytes)
    const pad = INT8_TENSOR_CORE_PADDING;
    const qa = quantizeRowsHost(xn, m, k, 1, pad);
    const qb = paletteInt8Host(h, pad);
    const [mp, words] = int8PackedShape(m, k, pad);
    const [np] = int8PackedShape(n, k, pad);
    expect([mp, np, words]).toEqual([128, 128, 32]);
    const c = int8MatMulPacked(qa.hi, qb.b, mp, np, words);
    const y0 = int8RescaleHost(c, qa.scale, qb.sb, { residual, cols: np });
    expect(Array.from(y)).toEqual(Array.from(y0));
    // the padding is zeros: the unpadded definition gives the same products
    const c0 = int8MatMulPacked(
      quantizeRowsHost(xn, m, k, 1).hi,
      paletteInt8Host(h).b,
      m,
      n,
      k / 4,
    );
    expect(Array.from(int8RescaleHost(c0, qa.scale, qb.sb, { residual }))).toEqual(Array.from(y0));
    const exact = linearReference.paletteMatMul(xn, m, h);
    let num = 0;
    let den = 0;
    for (let i = 0; i < m * n; i++) {
      num += (y[i] - residual[i] - exact[i]) ** 2;
      den += exact[i] ** 2;
    }
    expect(Math.sqrt(num / den)).toBeLessThan(0.02);
  });

  it('split precision: error against float64 far below bf16 inputs’ error', async () => {
    await useBackend('cpu');
    const m = 8;
    const n = 12;
    const k = 256;
    const rnd = seededRandom(13);
    const a = Float32Array.from({ length: m * k }, () => normal(rnd));
    const b = Float32Array.from({ length: n * k }, () => normal(rnd) * 0.02);
    const [at, bt] = [tf.tensor2d(a, [m, k]), tf.tensor2d(b, [n, k])];
    const c = await splitMatMul(at, bt).data();
    tf.dispose([at, bt]);
    const ref = linearReference.matMulT(
      Float64Array.from(a) as unknown as Float32Array,
      m,
      Float64Array.from(b) as unknown as Float32Array,
      n,
      k,
    );
    const bf = (v: Float32Array) => fromHalfBits(toHalfBits(v, 'bf16'), 'bf16');
    const bf16 = linearReference.matMulT(bf(a), m, bf(b), n, k);
    const err = (y: ArrayLike<number>) =>
      Math.sqrt(Array.from(ref).reduce((s, r, i) => s + (y[i] - r) ** 2, 0) / ref.length);
    expect(err(c)).toBeLessThan(err(bf16) / 16);
    expect(err(c)).toBeGreaterThan(0); // it is not the exact product: 16-bit operands
  });
});
