import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { writeFileAtomic, writeFully } from './atomic';
import { FormatError, IOError } from './errors';

/** safetensors dtypes and their element sizes. */
export const DTYPE_BYTES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
} as const;
export type SafetensorsDtype = keyof typeof DTYPE_BYTES;

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte range inside the data section. */
  begin: number;
  end: number;
}

const MAX_HEADER = 100 * 1024 * 1024;

/** In-memory safetensors bytes (a browser's fetch, a test), named for error messages. */
export interface SafetensorsBytes {
  name: string;
  bytes: Uint8Array;
}

/** Where a SafetensorsFile reads from: a file descriptor (Node) or bytes in memory (a browser). */
interface ByteSource {
  readonly size: number;
  /** Reads `out.length` bytes at `offset` into `out`; returns how many were read. */
  read(out: Uint8Array, offset: number): number;
  close(): void;
}

function fileSource(path: string): ByteSource {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new IOError(`cannot open ${path}: ${(err as Error).message}`, { cause: err });
  }
  let size: number;
  try {
    size = fstatSync(fd).size;
  } catch (err) {
    closeSync(fd); // as before the byte-source split: the descriptor is not left open
    throw err;
  }
  return {
    size,
    read: (out, offset) => readSync(fd, out, 0, out.length, offset),
    close: () => closeSync(fd),
  };
}

function memorySource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    read: (out, offset) => {
      const part = bytes.subarray(offset, offset + out.length);
      out.set(part);
      return part.length;
    },
    close: () => {},
  };
}

/**
 * A safetensors file opened lazily: the header is read and validated strictly (length bounds,
 * JSON, dtypes, shape × dtype size = byte range, ranges inside the file, contiguous and not
 * overlapping); tensor bytes are read on demand by offset. Opened from a path (Node) or from
 * bytes in memory (`{ name, bytes }`, no file system: what a browser page has).
 */
export class SafetensorsFile {
  readonly path: string;
  readonly tensors = new Map<string, TensorEntry>();
  readonly metadata: Record<string, string> = {};
  private readonly source: ByteSource;
  private readonly dataStart: number;

  constructor(from: string | SafetensorsBytes) {
    const path = typeof from === 'string' ? from : from.name;
    this.path = path;
    this.source = typeof from === 'string' ? fileSource(from) : memorySource(from.bytes);
    try {
      const size = this.source.size;
      if (size < 8)
        throw new FormatError(
          `${path}: ${size} bytes is too short for a safetensors header length`,
        );
      const lenBuf = new Uint8Array(8);
      this.source.read(lenBuf, 0);
      const headerLen = Number(new DataView(lenBuf.buffer).getBigUint64(0, true));
      if (headerLen < 2 || headerLen > MAX_HEADER)
        throw new FormatError(`${path}: header length ${headerLen} is out of bounds`);
      if (8 + headerLen > size)
        throw new FormatError(
          `${path}: header length ${headerLen} runs past the end of the ${size}-byte file (truncated?)`,
        );
      const headerBuf = new Uint8Array(headerLen);
      this.source.read(headerBuf, 8);
      let header: unknown;
      try {
        header = JSON.parse(new TextDecoder().decode(headerBuf));
      } catch {
        throw new FormatError(`${path}: the header is not valid JSON`);
      }
      if (typeof header !== 'object' || header === null || Array.isArray(header))
        throw new FormatError(`${path}: the header must be a JSON object`);
      this.dataStart = 8 + headerLen;
      const dataSize = size - this.dataStart;
      for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
        if (name === '__metadata__') {
          if (typeof raw !== 'object' || raw === null)
            throw new FormatError(`${path}: __metadata__ must be an object of strings`);
          for (const [k, v] of Object.entries(raw)) {
            if (typeof v !== 'string')
              throw new FormatError(`${path}: __metadata__.${k} must be a string`);
            this.metadata[k] = v;
          }
          continue;
        }
        this.tensors.set(name, validateEntry(path, name, raw, dataSize));
      }
      const sorted = [...this.tensors.values()].sort((a, b) => a.begin - b.begin);
      for (let i = 1; i < sorted.length; i++) {
        if (sorted[i].begin < sorted[i - 1].end) {
          throw new FormatError(
            `${path}: tensors '${sorted[i - 1].name}' and '${sorted[i].name}' overlap`,
          );
        }
      }
    } catch (err) {
      this.source.close();
      throw err;
    }
  }

  /** Raw bytes of one tensor (a copy; reads only that range of the file). */
  read(name: string): Uint8Array {
    const e = this.tensors.get(name);
    if (!e) throw new FormatError(`${this.path}: no tensor named '${name}'`);
    const out = new Uint8Array(e.end - e.begin);
    const n = this.source.read(out, this.dataStart + e.begin);
    if (n !== out.length) throw new FormatError(`${this.path}: tensor '${name}' is truncated`);
    return out;
  }

  close(): void {
    this.source.close();
  }
}

function validateEntry(path: string, name: string, raw: unknown, dataSize: number): TensorEntry {
  const where = `${path}: tensor '${name}'`;
  if (typeof raw !== 'object' || raw === null)
    throw new FormatError(`${where}: entry must be an object`);
  const { dtype, shape, data_offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES))
    throw new FormatError(`${where}: unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new FormatError(`${where}: bad shape ${JSON.stringify(shape)}`);
  if (
    !Array.isArray(data_offsets) ||
    data_offsets.length !== 2 ||
    !data_offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
  ) {
    throw new FormatError(`${where}: bad data_offsets ${JSON.stringify(data_offsets)}`);
  }
  const [begin, end] = data_offsets as number[];
  const bytes =
    (shape as number[]).reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype as SafetensorsDtype];
  if (end < begin || end - begin !== bytes)
    throw new FormatError(
      `${where}: shape [${shape}] × ${dtype} is ${bytes} bytes but its range is ${end - begin}`,
    );
  if (end > dataSize)
    throw new FormatError(
      `${where}: range ${begin}..${end} lies outside the ${dataSize}-byte data section (truncated?)`,
    );
  return { name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end };
}

export interface TensorToWrite {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Uint8Array | Uint16Array | Float32Array | Int32Array;
}

/**
 * Writes a safetensors file that Python's safetensors reads, atomically: the bytes go to a temp
 * file beside it (tensor by tensor, never the whole file in memory), are flushed to disk, and the
 * temp file is renamed over `path`. On any failure (a full disk, say) the temp file is removed,
 * the old file at `path` is untouched, and an IOError says what happened.
 */
export function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  const names = Object.keys(tensors).sort();
  for (const name of names) {
    const t = tensors[name];
    if (!(t.dtype in DTYPE_BYTES))
      throw new FormatError(`writeSafetensors: '${name}' has unknown dtype ${t.dtype}`);
    const bytes = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    if (bytes !== t.data.byteLength)
      throw new FormatError(
        `writeSafetensors: '${name}' has ${t.data.byteLength} bytes, shape [${t.shape}] × ${t.dtype} needs ${bytes}`,
      );
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  writeFileAtomic(path, (fd) => {
    writeFully(fd, prefix);
    writeFully(fd, headerBytes);
    for (const name of names) {
      const d = tensors[name].data;
      writeFully(fd, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    }
  });
}

export interface TensorSpec {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
}

/**
 * Writes a safetensors file whose tensors are produced one at a time, in pieces: the header is
 * made from the specs, then `produce(spec, write)` writes each tensor's bytes (in any number of
 * `write` calls that must add up to its size). Atomic like writeSafetensors (temp file, fsync,
 * rename); memory stays at what `produce` holds, never the whole file.
 */
export function writeSafetensorsStream(
  path: string,
  specs: TensorSpec[],
  produce: (spec: TensorSpec, write: (bytes: ArrayBufferView) => void) => void,
  metadata?: Record<string, string>,
  /** fsync before the rename (default); off for scratch files such as random test models. */
  durable = true,
): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  const sizes = new Map<string, number>();
  for (const t of specs) {
    if (!(t.dtype in DTYPE_BYTES))
      throw new FormatError(`writeSafetensorsStream: '${t.name}' has unknown dtype ${t.dtype}`);
    if (header[t.name]) throw new FormatError(`writeSafetensorsStream: '${t.name}' given twice`);
    const bytes = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    sizes.set(t.name, bytes);
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  writeFileAtomic(
    path,
    (fd) => {
      writeFully(fd, prefix);
      writeFully(fd, headerBytes);
      for (const spec of specs) {
        let written = 0;
        const size = sizes.get(spec.name)!;
        produce(spec, (d) => {
          written += d.byteLength;
          if (written > size)
            throw new FormatError(`'${spec.name}': more than its ${size} bytes were written`);
          writeFully(fd, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
        });
        if (written !== size)
          throw new FormatError(
            `'${spec.name}': ${written} bytes written, its shape needs ${size}`,
          );
      }
    },
    { durable },
  );
}
