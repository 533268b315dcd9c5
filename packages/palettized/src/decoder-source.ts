import { join } from 'node:path';
import { type HostWeight, fromHalfBits, paletteWeightHost } from '@edkm/core';
import { type DecoderSource, safetensorsSource } from '@edkm/llama';
import { PalettizedFile } from './format';
import { isPalettized } from './load';

/**
 * The weights of a palettized export for the Decoder: palettized weights as LUTs + the packed
 * index bytes as stored (no dense copy, no unpacking), dense BF16 weights as bf16 bits.
 */
export function palettizedSource(dir: string): DecoderSource & { close(): void } {
  return palettizedSourceOf(
    new PalettizedFile(dir.endsWith('.safetensors') ? dir : join(dir, 'model.safetensors')),
  );
}

/** The Decoder's weights of an opened palettized file (e.g. from bytes, in a browser). */
export function palettizedSourceOf(file: PalettizedFile): DecoderSource & { close(): void } {
  const palettized = new Set(file.palettizedNames());
  const decode = (dtype: string, bytes: Uint8Array): Float32Array =>
    dtype === 'F32'
      ? new Float32Array(bytes.buffer, 0, bytes.length / 4)
      : fromHalfBits(
          new Uint16Array(bytes.buffer, 0, bytes.length / 2),
          dtype === 'BF16' ? 'bf16' : 'fp16',
        );
  return {
    matrix(name): HostWeight {
      if (palettized.has(name))
        return { format: 'palette', palette: paletteWeightHost(file.paletteParts(name)) };
      const { dtype, shape, bytes } = file.denseRaw(name);
      const s = shape as [number, number];
      if (dtype === 'BF16')
        return {
          format: 'bf16',
          shape: s,
          bits: new Uint16Array(bytes.buffer, 0, bytes.length / 2),
        };
      return { format: 'f32', shape: s, data: decode(dtype, bytes) };
    },
    vector(name) {
      const { dtype, bytes } = file.denseRaw(name);
      return decode(dtype, bytes);
    },
    close: () => file.close(),
  };
}

/** The Decoder's weights of a model folder, palettized or 16-bit alike. */
export function decoderSource(dir: string): DecoderSource & { close(): void } {
  return isPalettized(dir) ? palettizedSource(dir) : safetensorsSource(dir);
}
