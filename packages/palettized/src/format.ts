import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  type PaletteTensor,
  dequantize,
  groupRowsOf,
  packIndices,
  paletteBytes,
  unpackIndices,
  validatePalette,
} from '@edkm/codec';
import { FormatError, type PaletteParts, fromHalfBits, toHalfBits } from '@edkm/core';
import {
  type SafetensorsBytes,
  SafetensorsFile,
  type TensorToWrite,
  decodeTensor,
  writeSafetensors,
} from '@edkm/llama';

export const FORMAT = 'edkm-palettized';
export const FORMAT_VERSION = '1';

/** Suffixes of the stored parts of a palettized weight `<name>`. */
const PART = {
  lut: '.lut',
  indices: '.indices',
  scales: '.scales',
  permutation: '.permutation',
} as const;
const PALETTE_KEY = '.palette';

/** Files of a Hugging Face model folder that an export carries over unchanged. */
export const MODEL_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'tokenizer.model',
  'special_tokens_map.json',
];

export interface DenseWeight {
  shape: number[];
  data: Float32Array;
}

/** Settings of one palettized weight, as stored in the file's metadata. */
interface PaletteSettings {
  shape: [number, number];
  bits: number;
  clusterDim: number;
  groupSize: number;
  groupRows?: number[];
}

/** Bytes of every part of an export, and what they mean per weight. */
export interface SizeReport {
  /** Weights stored as LUT indices, and the bytes of their LUTs / indices / scales / permutations. */
  palettizedWeights: number;
  lutBytes: number;
  indexBytes: number;
  scaleBytes: number;
  permutationBytes: number;
  /** Weights stored dense (embeddings, norms, LM head unless palettized) and their bytes. */
  denseWeights: number;
  denseBytes: number;
  /** Bits per palettized weight, LUTs, scales and permutations included. */
  bitsPerPalettizedWeight: number;
  /** Bits per weight over the whole model. */
  bitsPerWeight: number;
  /** The same model at 16 bits per weight, and how many times smaller the export is. */
  sixteenBitBytes: number;
  totalBytes: number;
  compression: number;
}

export interface WriteOptions {
  /** Dense weights' dtype (default bf16, the dtype of LLaMA checkpoints). */
  denseDtype?: 'bf16' | 'fp16' | 'f32';
  /** Extra metadata strings (training recipe, bits...). */
  metadata?: Record<string, string>;
  /** A Hugging Face folder whose config and tokenizer files are copied next to the weights. */
  copyFrom?: string;
}

/**
 * Writes a palettized model: `model.safetensors` with, for each palettized weight `<name>`, its
 * fp16 LUTs `<name>.lut` [groups, K, d], n-bit packed indices `<name>.indices` (U8), optional fp16
 * per-row `<name>.scales` and I32 `<name>.permutation`, its settings in the metadata
 * (`<name>.palette`); every other weight dense. `out` is a folder (config and tokenizer copied from
 * `copyFrom`) or a path ending in `.safetensors`. The bytes depend only on the inputs: an export
 * read back and written again is identical.
 */
export function writePalettized(
  out: string,
  dense: Map<string, DenseWeight>,
  palettes: Map<string, PaletteTensor>,
  opts: WriteOptions = {},
): SizeReport {
  const file = out.endsWith('.safetensors') ? out : join(out, 'model.safetensors');
  if (!out.endsWith('.safetensors')) mkdirSync(out, { recursive: true });
  const denseDtype = opts.denseDtype ?? 'bf16';
  const tensors: Record<string, TensorToWrite> = {};
  const meta: Record<string, string> = {
    ...opts.metadata,
    format: FORMAT,
    format_version: FORMAT_VERSION,
  };
  const report = emptyReport();
  for (const [name, w] of dense) {
    if (palettes.has(name)) continue;
    if (isPartName(name))
      throw new FormatError(`dense weight '${name}' collides with a palettized part's name`);
    tensors[name] =
      denseDtype === 'f32'
        ? { dtype: 'F32', shape: w.shape, data: w.data }
        : {
            dtype: denseDtype === 'bf16' ? 'BF16' : 'F16',
            shape: w.shape,
            data: toHalfBits(w.data, denseDtype),
          };
    report.denseWeights += w.data.length;
    report.denseBytes += tensors[name].data.byteLength;
  }
  for (const [name, p] of palettes) {
    validatePalette(p, name);
    const k = 2 ** p.bits;
    const groups = p.lut.length / (k * p.clusterDim);
    tensors[name + PART.lut] = { dtype: 'F16', shape: [groups, k, p.clusterDim], data: p.lut };
    const packed = packIndices(p.indices, p.bits);
    tensors[name + PART.indices] = { dtype: 'U8', shape: [packed.length], data: packed };
    if (p.scales)
      tensors[name + PART.scales] = {
        dtype: 'F16',
        shape: [p.scales.length],
        data: toHalfBits(p.scales, 'fp16'),
      };
    if (p.permutation)
      tensors[name + PART.permutation] = {
        dtype: 'I32',
        shape: [p.permutation.length],
        data: p.permutation,
      };
    const settings: PaletteSettings = {
      shape: p.shape,
      bits: p.bits,
      clusterDim: p.clusterDim,
      groupSize: p.groupSize,
      ...(p.groupRows ? { groupRows: p.groupRows } : {}),
    };
    meta[name + PALETTE_KEY] = JSON.stringify(settings);
    const bytes = paletteBytes(p);
    report.palettizedWeights += p.shape[0] * p.shape[1];
    report.lutBytes += bytes.lut;
    report.indexBytes += bytes.indices;
    report.scaleBytes += bytes.scales;
    report.permutationBytes += bytes.permutation;
  }
  // keys sorted, so that the bytes do not depend on the order the weights came in
  const sortedMeta = Object.fromEntries(Object.entries(meta).sort(([a], [b]) => (a < b ? -1 : 1)));
  writeSafetensors(file, tensors, sortedMeta);
  if (opts.copyFrom && !out.endsWith('.safetensors')) {
    for (const f of MODEL_FILES)
      if (existsSync(join(opts.copyFrom, f))) copyFileSync(join(opts.copyFrom, f), join(out, f));
  }
  return finishReport(report);
}

function isPartName(name: string): boolean {
  return Object.values(PART).some((suffix) => name.endsWith(suffix));
}

function emptyReport(): SizeReport {
  return {
    palettizedWeights: 0,
    lutBytes: 0,
    indexBytes: 0,
    scaleBytes: 0,
    permutationBytes: 0,
    denseWeights: 0,
    denseBytes: 0,
    bitsPerPalettizedWeight: 0,
    bitsPerWeight: 0,
    sixteenBitBytes: 0,
    totalBytes: 0,
    compression: 0,
  };
}

function finishReport(r: SizeReport): SizeReport {
  const palettized = r.lutBytes + r.indexBytes + r.scaleBytes + r.permutationBytes;
  const weights = r.palettizedWeights + r.denseWeights;
  r.totalBytes = palettized + r.denseBytes;
  r.bitsPerPalettizedWeight = r.palettizedWeights ? (8 * palettized) / r.palettizedWeights : 0;
  r.bitsPerWeight = weights ? (8 * r.totalBytes) / weights : 0;
  r.sixteenBitBytes = 2 * weights;
  r.compression = r.totalBytes ? r.sixteenBitBytes / r.totalBytes : 0;
  return r;
}

/**
 * A palettized export opened lazily (only the header is read until a weight is asked for): the
 * dense weights, the palettized weights in LUT form or dequantized, the size report.
 */
export class PalettizedFile {
  readonly path: string;
  readonly metadata: Record<string, string>;
  private readonly st: SafetensorsFile;
  private readonly settings = new Map<string, PaletteSettings>();

  /** A path (Node) or the file's bytes in memory (a browser page). */
  constructor(from: string | SafetensorsBytes) {
    const path = typeof from === 'string' ? from : from.name;
    this.path = path;
    this.st = new SafetensorsFile(from);
    this.metadata = this.st.metadata;
    try {
      if (this.metadata.format !== FORMAT)
        throw new FormatError(
          `${path} is not a palettized export (metadata format ${JSON.stringify(this.metadata.format)}, expected '${FORMAT}')`,
        );
      if (this.metadata.format_version !== FORMAT_VERSION)
        throw new FormatError(
          `${path}: palettized format version ${this.metadata.format_version} is not supported (this reader knows ${FORMAT_VERSION})`,
        );
      for (const [key, value] of Object.entries(this.metadata)) {
        if (!key.endsWith(PALETTE_KEY)) continue;
        const name = key.slice(0, -PALETTE_KEY.length);
        this.settings.set(name, parseSettings(path, name, value));
        for (const part of [PART.lut, PART.indices])
          if (!this.st.tensors.has(name + part))
            throw new FormatError(`${path}: palettized weight '${name}' has no '${name + part}'`);
      }
    } catch (err) {
      this.st.close();
      throw err;
    }
  }

  /** Names of the palettized weights. */
  palettizedNames(): string[] {
    return [...this.settings.keys()].sort();
  }

  /** Names of the dense weights. */
  denseNames(): string[] {
    return [...this.st.tensors.keys()].filter((n) => !this.isPart(n)).sort();
  }

  private isPart(name: string): boolean {
    for (const suffix of Object.values(PART))
      if (name.endsWith(suffix) && this.settings.has(name.slice(0, -suffix.length))) return true;
    return false;
  }

  /** One palettized weight in its stored form (LUTs, unpacked indices, scales, permutation). */
  palette(name: string): PaletteTensor {
    const s = this.settings.get(name);
    if (!s) throw new FormatError(`${this.path}: '${name}' is not a palettized weight`);
    const read16 = (part: string) => {
      const bytes = this.st.read(name + part);
      return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
    };
    const vectors = (s.shape[0] * s.shape[1]) / s.clusterDim;
    const indicesEntry = this.st.tensors.get(name + PART.indices)!;
    const expected = Math.ceil((vectors * s.bits) / 8);
    if (indicesEntry.end - indicesEntry.begin !== expected)
      throw new FormatError(
        `${this.path}: '${name}.indices' has ${indicesEntry.end - indicesEntry.begin} bytes, ${vectors} indices at ${s.bits} bits need ${expected}`,
      );
    const p: PaletteTensor = {
      ...s,
      lut: read16(PART.lut),
      indices: unpackIndices(this.st.read(name + PART.indices), s.bits, vectors),
      scales: this.st.tensors.has(name + PART.scales)
        ? fromHalfBits(read16(PART.scales), 'fp16')
        : undefined,
      permutation: this.st.tensors.has(name + PART.permutation)
        ? new Int32Array(this.st.read(name + PART.permutation).buffer)
        : undefined,
    };
    validatePalette(p, `${this.path}: '${name}'`);
    return p;
  }

  /**
   * One palettized weight in the form the inference kernels read: the packed index bytes as
   * stored (never unpacked), the fp16 LUTs, the group sizes, scales and permutation.
   */
  paletteParts(name: string): PaletteParts {
    const s = this.settings.get(name);
    if (!s) throw new FormatError(`${this.path}: '${name}' is not a palettized weight`);
    const read16 = (part: string) => {
      const bytes = this.st.read(name + part).slice();
      return new Uint16Array(bytes.buffer, 0, bytes.byteLength / 2);
    };
    const vectors = (s.shape[0] * s.shape[1]) / s.clusterDim;
    const packed = this.st.read(name + PART.indices);
    const expected = Math.ceil((vectors * s.bits) / 8);
    if (packed.length !== expected)
      throw new FormatError(
        `${this.path}: '${name}.indices' has ${packed.length} bytes, ${vectors} indices at ${s.bits} bits need ${expected}`,
      );
    return {
      shape: s.shape,
      bits: s.bits,
      clusterDim: s.clusterDim,
      packed,
      lut: read16(PART.lut),
      groupRows: groupRowsOf({ ...s, lut: new Uint16Array(0), indices: new Uint8Array(0) }),
      scales: this.st.tensors.has(name + PART.scales)
        ? fromHalfBits(read16(PART.scales), 'fp16')
        : undefined,
      permutation: this.st.tensors.has(name + PART.permutation)
        ? new Int32Array(this.st.read(name + PART.permutation).slice().buffer)
        : undefined,
    };
  }

  /** A dense weight's stored dtype, shape and bytes (bf16 stays bf16). */
  denseRaw(name: string): { dtype: string; shape: number[]; bytes: Uint8Array } {
    const entry = this.st.tensors.get(name);
    if (!entry || this.isPart(name))
      throw new FormatError(`${this.path}: no dense weight named '${name}'`);
    return { dtype: entry.dtype, shape: entry.shape, bytes: this.st.read(name).slice() };
  }

  /** A dense weight as stored, decoded to float32. */
  dense(name: string): DenseWeight {
    const entry = this.st.tensors.get(name);
    if (!entry || this.isPart(name))
      throw new FormatError(`${this.path}: no dense weight named '${name}'`);
    return { shape: entry.shape, data: decodeTensor(this.st.read(name), entry, this.path) };
  }

  /** Every weight as dense float32, the palettized ones hard-assigned (LUT[index] × scale). */
  dequantizeAll(): Map<string, DenseWeight> {
    const out = new Map<string, DenseWeight>();
    for (const name of this.denseNames()) out.set(name, this.dense(name));
    for (const name of this.palettizedNames()) {
      const p = this.palette(name);
      out.set(name, { shape: p.shape, data: dequantize(p) });
    }
    return out;
  }

  /** Byte accounting of what the file stores. */
  sizeReport(): SizeReport {
    const r = emptyReport();
    for (const name of this.denseNames()) {
      const e = this.st.tensors.get(name)!;
      r.denseWeights += e.shape.reduce((a, b) => a * b, 1);
      r.denseBytes += e.end - e.begin;
    }
    for (const [name, s] of this.settings) {
      const bytes = (part: string) => {
        const e = this.st.tensors.get(name + part);
        return e ? e.end - e.begin : 0;
      };
      const rows = s.shape[0];
      r.palettizedWeights += rows * s.shape[1];
      r.lutBytes += bytes(PART.lut);
      r.indexBytes += bytes(PART.indices);
      r.scaleBytes += bytes(PART.scales);
      // counted as ⌈log2 rows⌉ bits per row, as paletteBytes does (stored as I32 for simplicity)
      if (this.st.tensors.has(name + PART.permutation))
        r.permutationBytes += Math.ceil((rows * Math.max(1, Math.ceil(Math.log2(rows)))) / 8);
    }
    return finishReport(r);
  }

  close(): void {
    this.st.close();
  }
}

function parseSettings(path: string, name: string, value: string): PaletteSettings {
  let s: unknown;
  try {
    s = JSON.parse(value);
  } catch {
    throw new FormatError(`${path}: settings of '${name}' are not JSON`);
  }
  const o = s as Partial<PaletteSettings>;
  const ints = [o.bits, o.clusterDim, o.groupSize];
  if (
    !Array.isArray(o.shape) ||
    o.shape.length !== 2 ||
    !o.shape.every((d) => Number.isSafeInteger(d) && d > 0) ||
    !ints.every((v) => Number.isSafeInteger(v)) ||
    (o.groupRows !== undefined &&
      (!Array.isArray(o.groupRows) || !o.groupRows.every((g) => Number.isSafeInteger(g))))
  )
    throw new FormatError(`${path}: settings of '${name}' are malformed: ${value.slice(0, 200)}`);
  return o as PaletteSettings;
}
