import {
  Int8KernelNames,
  disposePackedWeight,
  int8PackedShape,
  int8Rescale,
  int8RescaleHost,
  paletteInt8,
  paletteInt8Host,
  quantizeRowsHost,
  quantizeRowsInt8,
  seededRandom,
  unpackInt8,
  uploadPaletteWeight,
} from '@edkm/core';
import * as tf from '@tensorflow/tfjs-core';
import type { ConformanceCase } from './index';
import { randomPalette } from './linear-cases';

/**
 * Conformance cases of the int8 linear kernels (core's int8-linear.ts): Int8QuantizeRows,
 * Int8Rescale and PaletteInt8 against their host definitions. Quantized values may differ by one
 * step where a backend's float32 division (127 / max, allowed 2.5 ulp in WGSL) moves a value
 * across a rounding tie (the low slice then by up to 256 steps: such a case fails loudly).
 */

/** Rows of N(0, 1)-ish values with one outlier row, one zero row and K not a multiple of 4. */
function rows(m: number, k: number, seed: number): Float32Array {
  const rnd = seededRandom(seed);
  const x = Float32Array.from({ length: m * k }, () => (rnd() + rnd() + rnd() - 1.5) * 2);
  if (m > 2) {
    x.fill(0, k, 2 * k); // row 1: zeros
    x[2 * k] = 40; // row 2: one outlier
  }
  return x;
}

const ints = async (t: tf.Tensor) => Float32Array.from(unpackInt8((await t.data()) as Int32Array));
const floats = async (t: tf.Tensor) => Float32Array.from(await t.data());
const unpacked = (w: Int32Array) => Float32Array.from(unpackInt8(w));

export function int8LinearCases(): ConformanceCase[] {
  const cases: ConformanceCase[] = [];
  const shapes = [
    { m: 1, k: 3 },
    { m: 5, k: 50 },
    { m: 9, k: 1031 },
    { m: 5, k: 50, pad: { rows: 8, k: 16 } },
  ];
  for (const slices of [1, 2] as const)
    shapes.forEach(({ m, k, pad }, i) => {
      const part = (which: 'hi' | 'lo' | 'scale') => ({
        kernelName: Int8KernelNames.Int8QuantizeRows,
        name: `int8QuantizeRows slices=${slices} ${m}×${k}${pad ? ' padded' : ''}: ${which}`,
        run: async () => {
          const x = rows(m, k, 300 + 10 * i + slices);
          const xt = tf.tensor2d(x, [m, k]);
          const got = quantizeRowsInt8(xt, slices, pad);
          const want = quantizeRowsHost(x, m, k, slices, pad);
          if (pad && got.hi.shape.join() !== int8PackedShape(m, k, pad).join())
            throw new Error(`padded to [${got.hi.shape}]`);
          const actual =
            which === 'scale'
              ? await floats(got.scale)
              : await ints(which === 'hi' ? got.hi : (got.lo as tf.Tensor));
          const expected =
            which === 'scale'
              ? want.scale
              : unpacked(which === 'hi' ? want.hi : (want.lo as Int32Array));
          tf.dispose([xt, got.hi, got.scale, ...(got.lo ? [got.lo] : [])]);
          // one step at a rounding tie; scales to float32 rounding of max/127
          return { actual, expected, tolerance: which === 'scale' ? 1e-6 : 1 };
        },
      });
      cases.push(part('hi'), part('scale'));
      if (slices === 2) cases.push(part('lo'));
    });
  // [M, N, products, residual, padding of c (extra rows and columns)]
  for (const [m, n, parts, res, extra] of [
    [1, 1, 1, false, 0],
    [7, 13, 2, false, 0],
    [33, 20, 3, true, 0],
    [16, 300, 1, true, 0],
    [5, 9, 3, true, 3],
  ] as const) {
    const two = parts > 1;
    cases.push({
      kernelName: Int8KernelNames.Int8Rescale,
      name: `int8Rescale ${m}×${n}${two ? ' with c2' : ''}${parts === 3 ? ' and c3' : ''}${res ? ' + residual' : ''}${extra ? ' (c padded)' : ''}`,
      run: async () => {
        const rnd = seededRandom(m * 31 + n);
        const int = () => Math.floor((rnd() - 0.5) * 2 ** 21);
        const [cm, cn] = [m + extra, n + extra];
        const c = Int32Array.from({ length: cm * cn }, int);
        const c2 = Int32Array.from({ length: cm * cn }, int);
        const c3 = Int32Array.from({ length: cm * cn }, int);
        const sa = Float32Array.from({ length: m }, () => rnd() * 1e-3);
        const sb = Float32Array.from({ length: n }, () => rnd() * 1e-3);
        const residual = Float32Array.from({ length: m * n }, () => rnd() - 0.5);
        const t = {
          c: tf.tensor2d(c, [cm, cn], 'int32'),
          c2: tf.tensor2d(c2, [cm, cn], 'int32'),
          c3: tf.tensor2d(c3, [cm, cn], 'int32'),
          sa: tf.tensor1d(sa),
          sb: tf.tensor1d(sb),
          residual: tf.tensor2d(residual, [m, n]),
        };
        const y = int8Rescale(t.c, t.sa, t.sb, {
          ...(two ? { c2: t.c2, lo: 1 / 256 } : {}),
          ...(parts === 3 ? { c3: t.c3 } : {}),
          ...(res ? { residual: t.residual } : {}),
        });
        const actual = await floats(y);
        tf.dispose([y, ...Object.values(t)]);
        const expected = int8RescaleHost(c, sa, sb, {
          cols: cn,
          ...(two ? { c2, lo: 1 / 256 } : {}),
          ...(parts === 3 ? { c3 } : {}),
          ...(res ? { residual } : {}),
        });
        // |y| ≤ ~1.1: float32 rounding of a product and a sum in either order
        return { actual, expected, tolerance: 1e-6 };
      },
    });
  }
  const palettes = [
    { m: 1, n: 5, k: 10, bits: 3 },
    { m: 1, n: 12, k: 64, bits: 3, groups: [5, 7], scales: true, permute: true },
    { m: 1, n: 6, k: 48, bits: 5, d: 2, scales: true },
    { m: 1, n: 9, k: 40, bits: 8 },
    { m: 1, n: 12, k: 64, bits: 3, permute: true, pad: { rows: 16, k: 32 } },
  ];
  palettes.forEach((c, i) => {
    const part = (which: 'b' | 'sb') => ({
      kernelName: Int8KernelNames.PaletteInt8,
      name: `paletteInt8 n=${c.n} k=${c.k} bits=${c.bits}${c.d ? ` d=${c.d}` : ''}${c.groups ? ' groups' : ''}${c.permute ? ' permuted' : ''}${c.pad ? ' padded' : ''}: ${which}`,
      run: async () => {
        const h = randomPalette(c, 8000 + i);
        const w = uploadPaletteWeight(h);
        const got = paletteInt8(w, c.pad);
        const want = paletteInt8Host(h, c.pad);
        if (c.pad && got.b.shape.join() !== int8PackedShape(c.n, c.k, c.pad).join())
          throw new Error(`padded to [${got.b.shape}]`);
        const actual = which === 'b' ? await ints(got.b) : await floats(got.sb);
        tf.dispose([got.b, got.sb]);
        disposePackedWeight(w);
        const expected = which === 'b' ? unpacked(want.b) : want.sb;
        return { actual, expected, tolerance: which === 'b' ? 1 : 1e-6 };
      },
    });
    cases.push(part('b'), part('sb'));
  });
  return cases;
}
