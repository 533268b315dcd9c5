// Random weights in their stored forms for the decode benches (nothing dense is ever built).
import type { HostWeight, PaletteWeightHost } from '@edkm/core';

/** xorshift32 words: random packed indices / bits without building anything dense. */
export function randomWords(n: number, seed: number): Uint32Array {
  const out = new Uint32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s >>> 0;
  }
  return out;
}

/** Random 3-bit palettized weight [n, k]: random packed indices, an 8-entry LUT of ±0.02-ish. */
export function randomPalette(n: number, k: number, bits: number, seed: number): HostWeight {
  const words = Math.ceil((n * k * bits) / 32);
  const lut = Float32Array.from(
    { length: 2 ** bits },
    (_, i) => (i - 2 ** (bits - 1) + 0.5) * 0.01,
  );
  const palette: PaletteWeightHost = {
    shape: [n, k],
    bits,
    clusterDim: 1,
    codes: randomWords(words, seed),
    lut,
    rowOut: Int32Array.from({ length: n }, (_, i) => i),
    rowGroup: new Int32Array(n),
    scales: new Float32Array(n).fill(1),
  };
  return { format: 'palette', palette };
}

/** Random bf16 weights of magnitude 2^-7..2^-4. */
export function randomBf16(n: number, k: number, seed: number): HostWeight {
  const w = randomWords(Math.ceil((n * k) / 2), seed);
  const bits = new Uint16Array(w.buffer, 0, n * k);
  for (let i = 0; i < bits.length; i++) {
    const r = bits[i];
    bits[i] = (r & 0x8000) | ((120 + ((r >> 7) & 3)) << 7) | (r & 0x7f);
  }
  return { format: 'bf16', shape: [n, k], bits };
}
