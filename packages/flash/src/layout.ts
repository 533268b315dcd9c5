import {
  closeSync,
  copyFileSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  statSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  FormatError,
  type HalfDtype,
  IOError,
  InvalidArgumentError,
  fromHalfBits,
  toHalfBits,
} from '@edkm/core';
import {
  type LlamaConfig,
  SafetensorsFile,
  type TensorToWrite,
  decodeTensor,
  parseLlamaConfig,
  writeFileAtomic,
  writeFully,
  writeSafetensors,
} from '@edkm/llama';
import { type DenseWeight, MODEL_FILES, PalettizedFile, isPalettized } from '@edkm/palettized';

/** Element type of the stored FFN neurons and resident weights. */
export type FlashDtype = 'bf16' | 'fp16' | 'f32';
/**
 * `neuron`: each neuron's gate row, up row and down column are one contiguous bundle (one read
 * brings a neuron). `matrix`: the three matrices stay apart (gate rows, up rows, down columns as
 * rows of down^T): three reads per neuron, the baseline that bundling improves on.
 */
export type Bundling = 'neuron' | 'matrix';

export const FLASH_FORMAT = 'edkm-flash';
export const FLASH_VERSION = 1;
export const FFN_FILE = 'ffn.flash';
export const RESIDENT_FILE = 'resident.safetensors';
const MAGIC = 'EDKMFLSH';
/** Header: magic (8 bytes), version (u32 LE), manifest length (u32 LE), manifest JSON. */
const PREAMBLE = 16;
const MAX_MANIFEST = 1 << 20;
/** The FFN data starts on a 4 KiB boundary, so that O_DIRECT reads of a layer stay aligned. */
export const DATA_ALIGN = 4096;
export const DTYPE_SIZE: Record<FlashDtype, number> = { bf16: 2, fp16: 2, f32: 4 };

/** The JSON manifest at the start of ffn.flash. */
export interface FlashManifest {
  format: typeof FLASH_FORMAT;
  version: typeof FLASH_VERSION;
  dtype: FlashDtype;
  bundling: Bundling;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  /** Bytes of one neuron: gate row + up row + down column, hiddenSize elements each. */
  neuronBytes: number;
  /** Bytes of one layer's FFN (intermediateSize · neuronBytes). */
  layerBytes: number;
  /** File offset of each layer's FFN; the first is the data offset (4 KiB aligned). */
  layerOffsets: number[];
  /** What the layout was written from, and that source's bytes (honest accounting). */
  source: {
    kind: '16-bit' | 'palettized';
    /** Bytes the source stores for the FFN weights (LUTs + packed indices + scales when palettized). */
    ffnBytes: number;
    /** Bytes of every weight of the source. */
    modelBytes: number;
  };
}

export interface ByteRange {
  offset: number;
  length: number;
}

export interface WriteLayoutOptions {
  /**
   * Element type on disk (default: the source's, i.e. fp16 for dequantized palettized weights;
   * resident weights then keep each their own dtype).
   */
  dtype?: FlashDtype;
  /** Neuron bundles (default) or separate matrices. */
  bundling?: Bundling;
  /** Folder with config.json and tokenizer files, when `source` is a bare .safetensors file. */
  configFrom?: string;
}

export interface LayoutReport {
  dir: string;
  manifest: FlashManifest;
  /** Bytes of ffn.flash's FFN data and of resident.safetensors' tensors. */
  ffnBytes: number;
  residentBytes: number;
}

const ffnNames = (l: number) =>
  (['gate_proj', 'up_proj', 'down_proj'] as const).map((m) => `model.layers.${l}.mlp.${m}.weight`);

/** Weights of a model folder (16-bit HF or palettized export) or of a .safetensors file. */
interface SourceWeights {
  weights: Map<string, DenseWeight>;
  /** The dtype each weight is stored at without loss (fp16 for dequantized palettized ones). */
  dtypes: Map<string, FlashDtype>;
  kind: '16-bit' | 'palettized';
  /** Stored bytes per weight name (a palettized weight counts all of its parts). */
  storedBytes: Map<string, number>;
  configDir: string;
}

function readSource(source: string, configFrom?: string): SourceWeights {
  if (!existsSync(source)) throw new IOError(`${source} does not exist`);
  const isDir = statSync(source).isDirectory();
  const configDir = configFrom ?? (isDir ? source : dirname(source));
  const weights = new Map<string, DenseWeight>();
  const storedBytes = new Map<string, number>();
  const dtypes = new Map<string, FlashDtype>();
  const dtypeOf = (d: string): FlashDtype => (d === 'F16' ? 'fp16' : d === 'F32' ? 'f32' : 'bf16');
  if (isPalettized(source)) {
    const pf = new PalettizedFile(isDir ? join(source, 'model.safetensors') : source);
    try {
      const st = new SafetensorsFile(pf.path);
      for (const [name, e] of st.tensors) {
        const owner = pf.palettizedNames().find((p) => name.startsWith(`${p}.`)) ?? name;
        storedBytes.set(owner, (storedBytes.get(owner) ?? 0) + e.end - e.begin);
        dtypes.set(owner, owner === name ? dtypeOf(e.dtype) : 'fp16');
      }
      st.close();
      for (const [name, w] of pf.dequantizeAll()) weights.set(name, w);
    } finally {
      pf.close();
    }
    return { weights, dtypes, kind: 'palettized', storedBytes, configDir };
  }
  const indexPath = isDir ? join(source, 'model.safetensors.index.json') : '';
  const files =
    isDir && existsSync(indexPath)
      ? [
          ...new Set(
            Object.values(
              (JSON.parse(readFileSync(indexPath, 'utf8')).weight_map ?? {}) as Record<
                string,
                string
              >,
            ),
          ),
        ].map((f) => join(source, f))
      : [isDir ? join(source, 'model.safetensors') : source];
  for (const f of files) {
    const st = new SafetensorsFile(f);
    try {
      for (const [name, e] of st.tensors) {
        weights.set(name, { shape: e.shape, data: decodeTensor(st.read(name), e, st.path) });
        storedBytes.set(name, e.end - e.begin);
        dtypes.set(name, dtypeOf(e.dtype));
      }
    } finally {
      st.close();
    }
  }
  return { weights, dtypes, kind: '16-bit', storedBytes, configDir };
}

function encode(values: Float32Array, dtype: FlashDtype): Uint8Array {
  const bits = dtype === 'f32' ? values : toHalfBits(values, dtype);
  return new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength);
}

/** The neurons of one layer in file order: bundles, or the three matrices one after another. */
function layerBytes(
  gate: Float32Array,
  up: Float32Array,
  down: Float32Array,
  inter: number,
  hidden: number,
  dtype: FlashDtype,
  bundling: Bundling,
): Uint8Array {
  const values = new Float32Array(3 * inter * hidden);
  for (let i = 0; i < inter; i++) {
    const row = (part: number) =>
      bundling === 'neuron' ? (3 * i + part) * hidden : (part * inter + i) * hidden;
    values.set(gate.subarray(i * hidden, (i + 1) * hidden), row(0));
    values.set(up.subarray(i * hidden, (i + 1) * hidden), row(1));
    const d = row(2);
    for (let h = 0; h < hidden; h++) values[d + h] = down[h * inter + i]; // column i of [hidden, inter]
  }
  return encode(values, dtype);
}

/**
 * Writes a flash layout folder from a model folder (16-bit Hugging Face or palettized export):
 * `ffn.flash` (manifest + every layer's FFN neurons, bundled by default), `resident.safetensors`
 * (embeddings, norms, attention, LM head) and the config/tokenizer files. Palettized weights are
 * dequantized (scale · LUT[index]) and stored at `dtype` (fp16 by default: exact unless the export
 * has per-row scales, whose products are rounded to fp16). Files are written atomically.
 */
export function writeFlashLayout(
  source: string,
  out: string,
  opts: WriteLayoutOptions = {},
): LayoutReport {
  const src = readSource(source, opts.configFrom);
  const configPath = join(src.configDir, 'config.json');
  if (!existsSync(configPath)) throw new IOError(`no config.json in ${src.configDir}`);
  const config = parseLlamaConfig(JSON.parse(readFileSync(configPath, 'utf8')), configPath);
  const dtype = opts.dtype ?? src.dtypes.get(ffnNames(0)[0]) ?? 'bf16';
  const bundling = opts.bundling ?? 'neuron';
  if (!(dtype in DTYPE_SIZE)) throw new InvalidArgumentError(`unknown dtype '${dtype}'`);
  if (bundling !== 'neuron' && bundling !== 'matrix')
    throw new InvalidArgumentError(`bundling must be 'neuron' or 'matrix', got '${bundling}'`);
  const H = config.hiddenSize;
  const I = config.intermediateSize;
  const L = config.numHiddenLayers;
  const neuronBytes = 3 * H * DTYPE_SIZE[dtype];
  const perLayer = I * neuronBytes;
  let sourceFfnBytes = 0;
  for (let l = 0; l < L; l++)
    for (const name of ffnNames(l)) {
      const w = src.weights.get(name);
      const expected = name.endsWith('down_proj.weight') ? [H, I] : [I, H];
      if (!w || w.shape.length !== 2 || w.shape[0] !== expected[0] || w.shape[1] !== expected[1])
        throw new FormatError(
          `${source}: '${name}' should be [${expected}], got ${w ? `[${w.shape}]` : 'nothing'}`,
        );
      sourceFfnBytes += src.storedBytes.get(name) ?? 0;
    }
  const manifestFor = (dataOffset: number): FlashManifest => ({
    format: FLASH_FORMAT,
    version: FLASH_VERSION,
    dtype,
    bundling,
    hiddenSize: H,
    intermediateSize: I,
    numLayers: L,
    neuronBytes,
    layerBytes: perLayer,
    layerOffsets: Array.from({ length: L }, (_, l) => dataOffset + l * perLayer),
    source: {
      kind: src.kind,
      ffnBytes: sourceFfnBytes,
      modelBytes: [...src.storedBytes.values()].reduce((a, b) => a + b, 0),
    },
  });
  // the manifest's length depends on the offsets' digits: settle the data offset first
  let dataOffset = DATA_ALIGN;
  while (PREAMBLE + Buffer.byteLength(JSON.stringify(manifestFor(dataOffset))) > dataOffset)
    dataOffset += DATA_ALIGN;
  const manifest = manifestFor(dataOffset);
  const json = Buffer.from(JSON.stringify(manifest), 'utf8');
  const preamble = Buffer.alloc(PREAMBLE);
  preamble.write(MAGIC, 0, 'latin1');
  preamble.writeUInt32LE(FLASH_VERSION, 8);
  preamble.writeUInt32LE(json.length, 12);

  mkdirSync(out, { recursive: true });
  const ffnPath = join(out, FFN_FILE);
  writeFileAtomic(ffnPath, (fd) => {
    writeFully(fd, preamble, 0);
    writeFully(fd, json, PREAMBLE);
    writeFully(fd, new Uint8Array(dataOffset - PREAMBLE - json.length), PREAMBLE + json.length);
    for (let l = 0; l < L; l++) {
      const [g, u, d] = ffnNames(l).map((n) => src.weights.get(n)!.data);
      writeFully(fd, layerBytes(g, u, d, I, H, dtype, bundling), manifest.layerOffsets[l]);
    }
  });

  const resident: Record<string, TensorToWrite> = {};
  let residentBytes = 0;
  for (const name of residentNames(config)) {
    const w = src.weights.get(name);
    if (!w) throw new FormatError(`${source}: missing weight '${name}'`);
    // each resident weight keeps its own lossless dtype unless one is asked for
    const d = opts.dtype ?? src.dtypes.get(name) ?? dtype;
    const data = d === 'f32' ? w.data : toHalfBits(w.data, d);
    resident[name] = {
      dtype: d === 'f32' ? 'F32' : d === 'bf16' ? 'BF16' : 'F16',
      shape: w.shape,
      data,
    };
    residentBytes += data.byteLength;
  }
  writeSafetensors(join(out, RESIDENT_FILE), resident, { format: FLASH_FORMAT });
  for (const f of MODEL_FILES) {
    const from = join(src.configDir, f);
    if (existsSync(from) && resolve(out) !== resolve(src.configDir))
      copyFileSync(from, join(out, f));
  }
  return { dir: out, manifest, ffnBytes: L * perLayer, residentBytes };
}

/** Weights that stay in memory: embeddings, norms, attention, LM head. */
export function residentNames(c: LlamaConfig): string[] {
  const names = ['model.embed_tokens.weight', 'model.norm.weight'];
  if (!c.tieWordEmbeddings) names.push('lm_head.weight');
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const p = `model.layers.${l}.`;
    names.push(`${p}input_layernorm.weight`, `${p}post_attention_layernorm.weight`);
    for (const m of ['q_proj', 'k_proj', 'v_proj', 'o_proj'])
      names.push(`${p}self_attn.${m}.weight`);
  }
  return names;
}

const isInt = (v: unknown, min = 0): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= min;

/** Checks every field of a manifest against itself and the file size; returns it typed. */
export function validateManifest(raw: unknown, fileBytes: number, where: string): FlashManifest {
  const fail = (msg: string): never => {
    throw new FormatError(`${where}: ${msg}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    fail('the manifest is not a JSON object');
  const m = raw as Record<string, unknown>;
  if (m.format !== FLASH_FORMAT)
    fail(`format ${JSON.stringify(m.format)} is not '${FLASH_FORMAT}'`);
  if (m.version !== FLASH_VERSION)
    fail(
      `version ${JSON.stringify(m.version)} is not supported (this reader knows ${FLASH_VERSION})`,
    );
  if (typeof m.dtype !== 'string' || !(m.dtype in DTYPE_SIZE))
    fail(`unknown dtype ${JSON.stringify(m.dtype)}`);
  if (m.bundling !== 'neuron' && m.bundling !== 'matrix')
    fail(`unknown bundling ${JSON.stringify(m.bundling)}`);
  for (const key of ['hiddenSize', 'intermediateSize', 'numLayers', 'neuronBytes', 'layerBytes'])
    if (!isInt(m[key], 1) || (m[key] as number) > 2 ** 40)
      fail(`${key} must be a positive integer, got ${JSON.stringify(m[key])}`);
  const H = m.hiddenSize as number;
  const I = m.intermediateSize as number;
  const L = m.numLayers as number;
  const size = DTYPE_SIZE[m.dtype as FlashDtype];
  if (m.neuronBytes !== 3 * H * size) fail(`neuronBytes ${m.neuronBytes} ≠ 3 · ${H} · ${size}`);
  if (m.layerBytes !== I * (m.neuronBytes as number))
    fail(`layerBytes ${m.layerBytes} ≠ ${I} neurons · ${m.neuronBytes} bytes`);
  const offsets = m.layerOffsets;
  if (!Array.isArray(offsets) || offsets.length !== L || !offsets.every((o) => isInt(o)))
    fail(`layerOffsets must be ${L} non-negative integers`);
  const layerBytes = m.layerBytes as number;
  (offsets as number[]).forEach((o, l) => {
    if (o % DATA_ALIGN !== 0 && l === 0) fail(`the data offset ${o} is not ${DATA_ALIGN}-aligned`);
    if (l > 0 && o < (offsets as number[])[l - 1] + layerBytes)
      fail(`layer ${l} overlaps layer ${l - 1}`);
    if (o + layerBytes > fileBytes)
      fail(
        `layer ${l} (${o}..${o + layerBytes}) runs past the end of the ${fileBytes}-byte file (truncated?)`,
      );
  });
  const last = (offsets as number[])[L - 1] + layerBytes;
  if (last !== fileBytes) fail(`the file has ${fileBytes} bytes, the layers end at ${last}`);
  const src = m.source as Record<string, unknown> | undefined;
  if (
    typeof src !== 'object' ||
    src === null ||
    (src.kind !== '16-bit' && src.kind !== 'palettized') ||
    !isInt(src.ffnBytes) ||
    !isInt(src.modelBytes)
  )
    fail('source must be { kind, ffnBytes, modelBytes }');
  return m as unknown as FlashManifest;
}

/**
 * A flash layout folder opened and validated: the manifest (strict: magic, version, every size
 * and offset, the exact file length), the config, the resident weights' names and shapes. The FFN
 * bytes are read later, by offset (see `neuronRanges`).
 */
export class FlashLayout {
  readonly dir: string;
  readonly ffnPath: string;
  readonly manifest: FlashManifest;
  readonly config: LlamaConfig;
  readonly fileBytes: number;
  readonly residentBytes: number;

  constructor(dir: string) {
    this.dir = dir;
    this.ffnPath = join(dir, FFN_FILE);
    if (!existsSync(this.ffnPath)) throw new IOError(`${dir} has no ${FFN_FILE}`);
    const configPath = join(dir, 'config.json');
    if (!existsSync(configPath)) throw new IOError(`${dir} has no config.json`);
    let configJson: unknown;
    try {
      configJson = JSON.parse(readFileSync(configPath, 'utf8'));
    } catch {
      throw new FormatError(`${configPath} is not valid JSON`);
    }
    this.config = parseLlamaConfig(configJson, configPath);
    const fd = openSync(this.ffnPath, 'r');
    try {
      this.fileBytes = fstatSync(fd).size;
      const where = this.ffnPath;
      if (this.fileBytes < PREAMBLE)
        throw new FormatError(`${where}: ${this.fileBytes} bytes is too short for a flash header`);
      const pre = Buffer.alloc(PREAMBLE);
      readSync(fd, pre, 0, PREAMBLE, 0);
      if (pre.toString('latin1', 0, 8) !== MAGIC)
        throw new FormatError(`${where} is not a flash layout (bad magic)`);
      const version = pre.readUInt32LE(8);
      if (version !== FLASH_VERSION)
        throw new FormatError(
          `${where}: version ${version} is not supported (this reader knows ${FLASH_VERSION})`,
        );
      const length = pre.readUInt32LE(12);
      if (length < 2 || length > MAX_MANIFEST || PREAMBLE + length > this.fileBytes)
        throw new FormatError(`${where}: manifest length ${length} is out of bounds (truncated?)`);
      const json = Buffer.alloc(length);
      readSync(fd, json, 0, length, PREAMBLE);
      let raw: unknown;
      try {
        raw = JSON.parse(json.toString('utf8'));
      } catch {
        throw new FormatError(`${where}: the manifest is not valid JSON`);
      }
      this.manifest = validateManifest(raw, this.fileBytes, where);
      if (this.manifest.layerOffsets[0] < PREAMBLE + length)
        throw new FormatError(`${where}: the data overlaps the manifest`);
    } finally {
      closeSync(fd);
    }
    const m = this.manifest;
    const c = this.config;
    if (
      m.hiddenSize !== c.hiddenSize ||
      m.intermediateSize !== c.intermediateSize ||
      m.numLayers !== c.numHiddenLayers
    )
      throw new FormatError(
        `${this.ffnPath}: manifest (hidden ${m.hiddenSize}, intermediate ${m.intermediateSize}, ${m.numLayers} layers) does not match config.json`,
      );
    const st = new SafetensorsFile(join(dir, RESIDENT_FILE));
    try {
      let bytes = 0;
      for (const name of residentNames(c)) {
        const e = st.tensors.get(name);
        if (!e) throw new FormatError(`${st.path}: missing resident weight '${name}'`);
        bytes += e.end - e.begin;
      }
      this.residentBytes = bytes;
    } finally {
      st.close();
    }
  }

  /** Bytes of the FFN data (every layer). */
  get ffnBytes(): number {
    return this.manifest.numLayers * this.manifest.layerBytes;
  }

  /** The resident weights (embeddings, norms, attention, LM head) as float32. */
  readResident(): Map<string, DenseWeight> {
    const st = new SafetensorsFile(join(this.dir, RESIDENT_FILE));
    try {
      const out = new Map<string, DenseWeight>();
      for (const name of residentNames(this.config)) {
        const e = st.tensors.get(name)!;
        out.set(name, { shape: e.shape, data: decodeTensor(st.read(name), e, st.path) });
      }
      return out;
    } finally {
      st.close();
    }
  }

  /** One layer's whole FFN read synchronously: gate and up rows, down columns as rows, [I, H] each. */
  readLayer(layer: number): { gate: Float32Array; up: Float32Array; down: Float32Array } {
    const m = this.manifest;
    const I = m.intermediateSize;
    const size = I * m.hiddenSize;
    const out = {
      gate: new Float32Array(size),
      up: new Float32Array(size),
      down: new Float32Array(size),
    };
    const bytes = new Uint8Array(m.layerBytes);
    const fd = openSync(this.ffnPath, 'r');
    try {
      const n = readSync(fd, bytes, 0, bytes.length, m.layerOffsets[layer]);
      if (n !== bytes.length) throw new FormatError(`${this.ffnPath}: layer ${layer} is truncated`);
    } finally {
      closeSync(fd);
    }
    const all = Int32Array.from({ length: I }, (_, i) => i);
    const base = m.layerOffsets[layer];
    const pieces = this.neuronRanges(layer, all).map((r) =>
      bytes.subarray(r.offset - base, r.offset - base + r.length),
    );
    this.decodeInto(pieces, all, out.gate, out.up, out.down);
    return out;
  }

  /**
   * The byte ranges holding `neurons` (ascending ids) of one layer, ascending by offset: one
   * bundle per neuron, or with `matrix` bundling its gate row, up row and down column apart.
   */
  neuronRanges(layer: number, neurons: ArrayLike<number>): ByteRange[] {
    const m = this.manifest;
    const base = m.layerOffsets[layer];
    const n = neurons.length;
    if (m.bundling === 'neuron')
      return Array.from({ length: n }, (_, j) => ({
        offset: base + neurons[j] * m.neuronBytes,
        length: m.neuronBytes,
      }));
    const row = m.neuronBytes / 3;
    const out: ByteRange[] = new Array(3 * n);
    for (let part = 0; part < 3; part++)
      for (let j = 0; j < n; j++)
        out[part * n + j] = {
          offset: base + (part * m.intermediateSize + neurons[j]) * row,
          length: row,
        };
    return out;
  }

  /**
   * Decodes the bytes of `neuronRanges(layer, neurons)` (in that order, concatenated per range as
   * `pieces`) into rows of `gate`, `up`, `down` (down column as a row), at `slots[j]` for neuron j.
   */
  decodeInto(
    pieces: Uint8Array[],
    slots: ArrayLike<number>,
    gate: Float32Array,
    up: Float32Array,
    down: Float32Array,
  ): void {
    const m = this.manifest;
    const H = m.hiddenSize;
    const rowBytes = m.neuronBytes / 3;
    const n = slots.length;
    const targets = [gate, up, down];
    for (let j = 0; j < n; j++) {
      for (let part = 0; part < 3; part++) {
        const piece = m.bundling === 'neuron' ? pieces[j] : pieces[part * n + j];
        const at = m.bundling === 'neuron' ? part * rowBytes : 0;
        decodeRow(piece, at, H, m.dtype, targets[part].subarray(slots[j] * H, (slots[j] + 1) * H));
      }
    }
  }
}

/** `count` elements of `dtype` at byte `at` of `bytes`, into `out`. */
export function decodeRow(
  bytes: Uint8Array,
  at: number,
  count: number,
  dtype: FlashDtype,
  out: Float32Array,
): void {
  const size = DTYPE_SIZE[dtype];
  let b = bytes.subarray(at, at + count * size);
  if (b.byteOffset % size !== 0) b = b.slice();
  if (dtype === 'f32') out.set(new Float32Array(b.buffer, b.byteOffset, count));
  else fromHalfBits(new Uint16Array(b.buffer, b.byteOffset, count), dtype as HalfDtype, out);
}
