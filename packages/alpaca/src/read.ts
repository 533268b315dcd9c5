import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AlpacaRowError,
  FormatError,
  IOError,
  InvalidArgumentError,
  type RowSource,
} from './errors';
import { type RowFileFormat, RowScanner } from './scan';
import type { AlpacaRow } from './template';

/** A valid row and where it comes from. */
export interface AlpacaRecord extends AlpacaRow, RowSource {}

/** Progress of a long load: bytes of the file read so far, rows parsed, examples kept. */
export interface LoadProgress {
  file: string;
  bytesRead: number;
  /** File size in bytes (undefined for rows that do not come from a file). */
  totalBytes?: number;
  rows: number;
  /** Examples kept so far (loadAlpaca only). */
  examples?: number;
}

export interface ReadOptions {
  /** Bytes per read (default 64 KiB); the memory used does not grow with the file. */
  chunkSize?: number;
  /** Skip invalid rows (each reaches `onSkip`) instead of throwing the first AlpacaRowError. */
  skipInvalid?: boolean;
  onSkip?: (error: AlpacaRowError) => void;
  /** Extra (ignored) fields of a row, once per field and row: counted by loadAlpaca. */
  onExtraField?: (name: string) => void;
  /** Called after every chunk and at the end. */
  onProgress?: (p: LoadProgress) => void;
  /** Stop after this many valid rows. */
  limit?: number;
  /** Called once the format is known. */
  onFormat?: (format: RowFileFormat | 'rows') => void;
}

const ALPACA_FIELDS = new Set(['instruction', 'input', 'output']);
// Stanford Alpaca's seed_tasks.jsonl: {id, name, instruction, instances: [{input, output}], is_classification}
const SEED_TASK_FIELDS = new Set(['id', 'name', 'instruction', 'instances', 'is_classification']);

const typeName = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** `obj[field]` as a string; '' where `optional` and absent; otherwise an AlpacaRowError. */
function stringField(
  obj: Record<string, unknown>,
  field: string,
  source: RowSource,
  label: string,
  rule: 'required' | 'non-empty' | 'optional',
): string {
  const v = obj[field];
  if (v === undefined) {
    if (rule === 'optional') return '';
    throw new AlpacaRowError(source, 'missing-field', `"${label}" is missing`, label);
  }
  if (typeof v !== 'string')
    throw new AlpacaRowError(
      source,
      'not-string',
      `"${label}" must be a string, got ${typeName(v)}`,
      label,
    );
  if (rule === 'non-empty' && v.trim() === '')
    throw new AlpacaRowError(source, 'empty-field', `"${label}" is empty`, label);
  return v;
}

/**
 * Checks one parsed row and hands on its examples: an Alpaca row gives one; a seed-task row
 * (`instances: [{input, output}]`, no `output`) gives one per instance. `instruction` and
 * `output` must be non-empty strings, `input` a string or absent (''); other fields are allowed
 * and reported through `onExtraField`.
 */
export function validateRow(
  value: unknown,
  source: RowSource,
  emit: (record: AlpacaRecord) => void,
  onExtraField?: (name: string) => void,
): void {
  if (!isObject(value))
    throw new AlpacaRowError(
      source,
      'not-object',
      `a row must be an object, got ${typeName(value)}`,
    );
  const seedTask = value.output === undefined && value.instances !== undefined;
  const instruction = stringField(value, 'instruction', source, 'instruction', 'non-empty');
  if (onExtraField) {
    const known = seedTask ? SEED_TASK_FIELDS : ALPACA_FIELDS;
    for (const key in value) if (!known.has(key)) onExtraField(key);
  }
  if (!seedTask) {
    const input = stringField(value, 'input', source, 'input', 'optional');
    const output = stringField(value, 'output', source, 'output', 'non-empty');
    emit({ instruction, input, output, file: source.file, row: source.row, line: source.line });
    return;
  }
  const instances = value.instances;
  if (!Array.isArray(instances) || instances.length === 0) {
    throw new AlpacaRowError(
      source,
      Array.isArray(instances) ? 'empty-field' : 'not-object',
      `"instances" must be a non-empty array, got ${Array.isArray(instances) ? '[]' : typeName(instances)}`,
      'instances',
    );
  }
  // validate every instance before emitting any, so that a skipped row is skipped whole
  const records: AlpacaRecord[] = [];
  for (let k = 0; k < instances.length; k++) {
    const at = { ...source, instance: k + 1 };
    const inst = instances[k];
    const label = `instances[${k}]`;
    if (!isObject(inst))
      throw new AlpacaRowError(
        at,
        'not-object',
        `"${label}" must be an object, got ${typeName(inst)}`,
        label,
      );
    const input = stringField(inst, 'input', at, `${label}.input`, 'optional');
    const output = stringField(inst, 'output', at, `${label}.output`, 'non-empty');
    records.push({ instruction, input, output, ...at });
  }
  for (const r of records) emit(r);
}

/** Parses one row's JSON text and validates it (malformed JSON: an AlpacaRowError). */
export function parseRow(
  text: string,
  source: RowSource,
  emit: (record: AlpacaRecord) => void,
  onExtraField?: (name: string) => void,
): void {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new AlpacaRowError(
      source,
      'malformed-json',
      `malformed JSON: ${(err as Error).message}`,
      undefined,
      {
        cause: err,
      },
    );
  }
  validateRow(value, source, emit, onExtraField);
}

/**
 * Streams the valid rows of an Alpaca file: a JSON array of `{instruction, input, output}` (the
 * 52K file, the cleaned variants) or JSON Lines of the same, or Stanford Alpaca's seed tasks
 * (flattened: one row per instance). The file is read `chunkSize` bytes at a time, decoded as
 * UTF-8 (a BOM is skipped) and split into rows by RowScanner: memory stays bounded by the
 * chunk and the largest row, whatever the file size.
 */
export async function* readAlpacaRows(
  path: string,
  opts: ReadOptions = {},
): AsyncGenerator<AlpacaRecord> {
  const chunkSize = opts.chunkSize ?? 65536;
  if (!Number.isInteger(chunkSize) || chunkSize < 1)
    throw new InvalidArgumentError(`chunkSize must be a positive integer, got ${chunkSize}`);
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new IOError(`cannot open ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const totalBytes = (await handle.stat()).size;
    const pending: AlpacaRecord[] = [];
    const push = (r: AlpacaRecord) => {
      pending.push(r);
    };
    const scanner = new RowScanner(path, (text, row, line) => {
      try {
        parseRow(text, { file: path, row, line }, push, opts.onExtraField);
      } catch (err) {
        if (!(opts.skipInvalid && err instanceof AlpacaRowError)) throw err;
        opts.onSkip?.(err);
      }
    });
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const decode = (bytes?: Uint8Array) => {
      try {
        return bytes ? decoder.decode(bytes, { stream: true }) : decoder.decode();
      } catch (err) {
        throw new FormatError(`${path}: not valid UTF-8 (after row ${scanner.rows})`, {
          cause: err,
        });
      }
    };
    const buffer = new Uint8Array(chunkSize);
    let bytesRead = 0;
    let formatReported = false;
    let kept = 0;
    for (;;) {
      const { bytesRead: n } = await handle.read(buffer, 0, chunkSize, null);
      if (n === 0) {
        scanner.push(decode());
        scanner.end();
      } else {
        bytesRead += n;
        scanner.push(decode(buffer.subarray(0, n)));
      }
      if (!formatReported && scanner.format) {
        formatReported = true;
        opts.onFormat?.(scanner.format);
      }
      for (const r of pending) {
        if (kept++ >= limit) return;
        yield r;
      }
      pending.length = 0;
      opts.onProgress?.({ file: path, bytesRead, totalBytes, rows: scanner.rows });
      if (n === 0) return;
    }
  } finally {
    await handle.close();
  }
}

/**
 * The path of a data file shipped with the repository (data/alpaca/, found by walking up from
 * this package, as `defaultModelDir()` of @edkm/llama does): by default `alpaca_seed.json`, the
 * 175 seed tasks of Stanford Alpaca in Alpaca's own format (CC BY-NC 4.0, see DATA_LICENSE).
 */
export function defaultAlpacaPath(file = 'alpaca_seed.json'): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'data', 'alpaca', file);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new IOError(`cannot find data/alpaca/${file} above the @edkm/alpaca package`);
}
