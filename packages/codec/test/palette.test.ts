import { FormatError, f16BitsToF32, f32ToF16Bits } from '@edkm/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type PaletteTensor, dequantize, paletteBytes, validatePalette } from '../src/index';

/** A random palettized tensor: groups of random sizes, optional scales and permutation. */
const paletteArb = fc
  .record({
    groups: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }),
    vectors: fc.integer({ min: 1, max: 6 }),
    clusterDim: fc.constantFrom(1, 2, 4),
    bits: fc.integer({ min: 1, max: 8 }),
    scaled: fc.boolean(),
    permuted: fc.boolean(),
    seed: fc.integer(),
  })
  .map(({ groups, vectors, clusterDim, bits, scaled, permuted, seed }): PaletteTensor => {
    let s = seed >>> 0;
    const next = () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 2 ** 32;
    };
    const rows = groups.reduce((a, b) => a + b, 0);
    const cols = vectors * clusterDim;
    const k = 2 ** bits;
    const permutation = Int32Array.from({ length: rows }, (_, i) => i);
    if (permuted)
      for (let i = rows - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [permutation[i], permutation[j]] = [permutation[j], permutation[i]];
      }
    return {
      shape: [rows, cols],
      bits,
      clusterDim,
      groupSize: rows,
      groupRows: groups,
      lut: Uint16Array.from({ length: groups.length * k * clusterDim }, () =>
        f32ToF16Bits(next() - 0.5),
      ),
      indices: Uint8Array.from({ length: rows * vectors }, () => Math.floor(next() * k)),
      scales: scaled ? Float32Array.from({ length: rows }, () => 0.5 + next()) : undefined,
      permutation: permuted ? permutation : undefined,
    };
  });

describe('dequantize', () => {
  it('W[perm[s]][v·d + b] = scale[s] · LUT[group(s)][index(s, v)][b], for any groups, scales and permutation', () => {
    fc.assert(
      fc.property(paletteArb, (p) => {
        const [rows, cols] = p.shape;
        const d = p.clusterDim;
        const k = 2 ** p.bits;
        const groupOf: number[] = [];
        p.groupRows!.forEach((n, g) => {
          for (let i = 0; i < n; i++) groupOf.push(g);
        });
        const dense = dequantize(p);
        for (let s = 0; s < rows; s++) {
          const row = p.permutation ? p.permutation[s] : s;
          for (let c = 0; c < cols; c++) {
            const idx = p.indices[s * (cols / d) + Math.floor(c / d)];
            const want =
              (p.scales ? p.scales[s] : 1) *
              f16BitsToF32(p.lut[(groupOf[s] * k + idx) * d + (c % d)]);
            expect(dense[row * cols + c]).toBe(Math.fround(want));
          }
        }
      }),
      { numRuns: 200, seed: 3 },
    );
  });

  it('a uniform groupSize is the same as equal groupRows', () => {
    fc.assert(
      fc.property(paletteArb, (p) => {
        const rows = p.shape[0];
        const uniform = {
          ...p,
          groupRows: undefined,
          groupSize: rows,
          lut: p.lut.slice(0, 2 ** p.bits * p.clusterDim),
        };
        expect(dequantize(uniform)).toEqual(dequantize({ ...uniform, groupRows: [rows] }));
      }),
      { numRuns: 50, seed: 4 },
    );
  });

  it('counts bytes: LUT fp16, indices at `bits` per index, scales fp16, permutation ⌈log2 rows⌉ bits', () => {
    const p: PaletteTensor = {
      shape: [8, 16],
      bits: 3,
      clusterDim: 1,
      groupSize: 4,
      lut: new Uint16Array(2 * 8),
      indices: new Uint8Array(128),
      scales: new Float32Array(8),
      permutation: Int32Array.from([7, 6, 5, 4, 3, 2, 1, 0]),
    };
    expect(paletteBytes(p)).toEqual({
      lut: 32,
      indices: 48,
      scales: 16,
      permutation: 3,
      total: 99,
    });
  });
});

describe('validatePalette: bad input is a FormatError naming the tensor and the fault', () => {
  const ok: PaletteTensor = {
    shape: [4, 4],
    bits: 2,
    clusterDim: 2,
    groupSize: 2,
    lut: new Uint16Array(2 * 4 * 2),
    indices: new Uint8Array(8),
  };
  it.each([
    ['bits', { bits: 9 }, /bits 9 not in 1..8/],
    ['clusterDim', { clusterDim: 3 }, /clusterDim 3 does not divide/],
    ['LUT size', { lut: new Uint16Array(3) }, /LUT has 3 entries, expected 2×4×2/],
    ['index count', { indices: new Uint8Array(7) }, /7 indices, expected 8/],
    ['scales', { scales: new Float32Array(3) }, /3 scales for 4 rows/],
    ['group rows', { groupRows: [1, 2] }, /do not sum to 4/],
    ['permutation', { permutation: Int32Array.from([0, 1, 1, 3]) }, /not a permutation/],
  ])('%s', (_, patch, message) => {
    const bad = { ...ok, ...patch } as PaletteTensor;
    expect(() => validatePalette(bad, 'w.q')).toThrow(FormatError);
    expect(() => validatePalette(bad, 'w.q')).toThrow(message);
  });
  it('an index past K is an error, not a silent read past the LUT', () => {
    expect(() => dequantize({ ...ok, indices: Uint8Array.from([0, 1, 2, 3, 4, 0, 0, 0]) })).toThrow(
      /index 4 at row 2 is out of range for 2 bits/,
    );
  });
});
