import { readFileSync } from 'node:fs';
import { EdkmError, FormatError } from '@edkm/core';

/** One parsed row of a task file, with where it came from (for error messages). */
export interface Row {
  file: string;
  /** 1-based row number (non-blank lines of a JSONL file, elements of a JSON array). */
  row: number;
  /** 1-based line of the file (JSONL) or 0 (JSON array). */
  line: number;
  value: Record<string, unknown>;
}

export function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new EdkmError('IO', `cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
}

export const where = (r: Pick<Row, 'file' | 'row' | 'line'>): string =>
  r.line > 0 ? `${r.file}: row ${r.row} (line ${r.line})` : `${r.file}: row ${r.row}`;

/** Rows of a JSONL file (blank lines skipped), or of a file holding one JSON array of objects. */
export function readRows(path: string): Row[] {
  const text = readText(path).replace(/^\uFEFF/, '');
  const rows: Row[] = [];
  const add = (value: unknown, row: number, line: number) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new FormatError(`${where({ file: path, row, line })}: expected a JSON object`);
    }
    rows.push({ file: path, row, line, value: value as Record<string, unknown> });
  };
  if (text.trimStart().startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      throw new FormatError(`${path}: bad JSON: ${(cause as Error).message}`, { cause });
    }
    (parsed as unknown[]).forEach((v, i) => add(v, i + 1, 0));
    return rows;
  }
  const lines = text.split(/\r?\n/);
  lines.forEach((l, i) => {
    if (l.trim() === '') return;
    const row = rows.length + 1;
    let value: unknown;
    try {
      value = JSON.parse(l);
    } catch (cause) {
      throw new FormatError(
        `${where({ file: path, row, line: i + 1 })}: bad JSON: ${(cause as Error).message}`,
        { cause },
      );
    }
    add(value, row, i + 1);
  });
  return rows;
}

const typeName = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;

function field(r: Row, name: string): unknown {
  if (!(name in r.value) || r.value[name] === undefined) {
    throw new FormatError(`${where(r)}: missing field "${name}"`);
  }
  return r.value[name];
}

export function str(r: Row, name: string, value: unknown = field(r, name)): string {
  if (typeof value !== 'string') {
    throw new FormatError(`${where(r)}: field "${name}" must be a string, got ${typeName(value)}`);
  }
  return value;
}

export function strArray(r: Row, name: string, value: unknown = field(r, name)): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw new FormatError(
      `${where(r)}: field "${name}" must be an array of strings, got ${typeName(value)}`,
    );
  }
  return value as string[];
}

export function obj(
  r: Row,
  name: string,
  value: unknown = field(r, name),
): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new FormatError(`${where(r)}: field "${name}" must be an object, got ${typeName(value)}`);
  }
  return value as Record<string, unknown>;
}

/** An integer field; `asString` also accepts its decimal string ("1"), as HF datasets store labels. */
export function int(
  r: Row,
  name: string,
  asString = false,
  value: unknown = field(r, name),
): number {
  const n =
    asString && typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n)) {
    throw new FormatError(
      `${where(r)}: field "${name}" must be an integer, got ${typeName(value)} ${JSON.stringify(value)}`,
    );
  }
  return n;
}

export const has = (r: Row, name: string): boolean =>
  name in r.value && r.value[name] !== undefined && r.value[name] !== null;

export function inRange(r: Row, name: string, value: number, count: number): number {
  if (value < 0 || value >= count) {
    throw new FormatError(
      `${where(r)}: ${name} ${value} is out of range for ${count} choices (0..${count - 1})`,
    );
  }
  return value;
}
