import { ShapeError, fromHalfBits } from '@edkm/core';
import type { Palettized } from './layer';

/** Dense float32 weights of a palettized tensor: scale_r × LUT_g[index] (the hard-assigned model). */
export function dequantize(p: Palettized): Float32Array {
  const [rows, cols] = p.shape;
  const d = p.clusterDim;
  const k = 2 ** p.bits;
  const groups = rows / p.groupSize;
  if (p.lut.length !== groups * k * d)
    throw new ShapeError(`LUT has ${p.lut.length} entries, expected ${groups * k * d}`);
  if (p.indices.length !== (rows * cols) / d)
    throw new ShapeError(`${p.indices.length} indices, expected ${(rows * cols) / d}`);
  const lut = fromHalfBits(p.lut, 'fp16');
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const base = Math.floor(r / p.groupSize) * k * d;
    const scale = p.scales ? p.scales[r] : 1;
    for (let v = 0; v < cols / d; v++) {
      const idx = p.indices[(r * cols) / d + v];
      if (idx >= k)
        throw new ShapeError(`index ${idx} at row ${r} is out of range for ${p.bits} bits`);
      for (let b = 0; b < d; b++) out[r * cols + v * d + b] = scale * lut[base + idx * d + b];
    }
  }
  return out;
}
