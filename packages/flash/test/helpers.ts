import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { f32ToF16Bits } from '@edkm/core';
import { SafetensorsFile, decodeTensor, defaultModelDir } from '@edkm/llama';
import { type DenseWeight, type PaletteTensor, writePalettized } from '@edkm/palettized';

export const modelDir = defaultModelDir();

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `edkm-flash-${prefix}-`));
}

/** Every weight of the shipped model as float32. */
export function denseTiny(): Map<string, DenseWeight> {
  const st = new SafetensorsFile(join(modelDir, 'model.safetensors'));
  const out = new Map<string, DenseWeight>();
  for (const [name, e] of st.tensors)
    out.set(name, { shape: e.shape, data: decodeTensor(st.read(name), e, st.path) });
  st.close();
  return out;
}

/** Round-to-nearest onto an evenly spaced 4-bit fp16 LUT per tensor (no scales: exact in fp16). */
function palettize(w: DenseWeight, bits = 4): PaletteTensor {
  const [rows, cols] = w.shape as [number, number];
  const k = 2 ** bits;
  let max = 0;
  for (const v of w.data) max = Math.max(max, Math.abs(v));
  const lut = Uint16Array.from({ length: k }, (_, j) =>
    f32ToF16Bits(-max + (2 * max * j) / (k - 1)),
  );
  const indices = Uint8Array.from(w.data, (v) =>
    Math.max(0, Math.min(k - 1, Math.round(((v + max) / (2 * max)) * (k - 1)))),
  );
  return { shape: [rows, cols], bits, clusterDim: 1, groupSize: rows, lut, indices };
}

/** A palettized export of the shipped model (every projection at 4 bits) in `out`. */
export function writePalettizedTiny(out: string, dense = denseTiny()): string {
  const palettes = new Map<string, PaletteTensor>();
  for (const [name, w] of dense)
    if (name.endsWith('_proj.weight')) palettes.set(name, palettize(w));
  writePalettized(out, dense, palettes, { copyFrom: modelDir });
  return out;
}

/** Index of the first element where two arrays differ (−1 when equal, length included). */
export function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++)
    if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  return -1;
}
