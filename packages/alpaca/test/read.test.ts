import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AlpacaRecord,
  AlpacaRowError,
  FormatError,
  IOError,
  type LoadProgress,
  RowScanner,
  defaultAlpacaPath,
  readAlpacaRows,
} from '../src/index';
import { collect, fixture, readJson } from './util';

const seedPath = defaultAlpacaPath();
const strip = (r: AlpacaRecord) => ({
  instruction: r.instruction,
  input: r.input,
  output: r.output,
});

/** Row texts of `text` pushed to a RowScanner in the given pieces. */
function scanPieces(pieces: string[]): string[] {
  const rows: string[] = [];
  const scanner = new RowScanner('mem', (text) => rows.push(text));
  for (const p of pieces) scanner.push(p);
  scanner.end();
  return rows;
}

/** Cuts `text` at the given fractions (sorted, deduplicated). */
function cut(text: string, at: number[]): string[] {
  const points = [...new Set(at.map((f) => Math.floor(f * text.length)))].sort((a, b) => a - b);
  const out: string[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(text.slice(prev, p));
    prev = p;
  }
  out.push(text.slice(prev));
  return out;
}

const awkward = fc.stringOf(
  fc.oneof(
    fc.constantFrom(
      '"',
      '\\',
      '{',
      '}',
      '[',
      ']',
      ',',
      ':',
      '\n',
      '\r',
      '\t',
      ' ',
      '\u2028',
      '\ufeff',
      '😀',
      'é',
      '\\"',
      '\\\\"',
    ),
    fc.fullUnicode(),
  ),
  { maxLength: 30 },
);
const row = fc.record(
  { instruction: awkward, input: awkward, output: awkward, extra: fc.jsonValue({ maxDepth: 3 }) },
  { requiredKeys: ['instruction', 'input', 'output'] },
);

describe('RowScanner (streaming JSON array / JSONL splitter)', () => {
  it('property: any JSON array of rows, cut anywhere, gives the rows of JSON.parse', () => {
    fc.assert(
      fc.property(
        fc.array(row, { maxLength: 8 }),
        fc.constantFrom(undefined, 1, 2, '\t', '\r\n '),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }),
        (rows, indent, cuts) => {
          const text = JSON.stringify(rows, null, indent as number | string | undefined);
          const parsed = scanPieces(cut(text, cuts)).map((t) => JSON.parse(t));
          expect(parsed).toEqual(JSON.parse(text));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: JSON Lines with blank lines and CRLF, cut anywhere, gives the rows', () => {
    fc.assert(
      fc.property(
        fc.array(row, { minLength: 1, maxLength: 8 }),
        fc.constantFrom('\n', '\r\n', '\n\n', '\n  \n'),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }),
        (rows, eol, cuts) => {
          const lines = rows.map((r) => JSON.stringify(r));
          const text = lines.join(eol) + eol;
          // compared with JSON.parse of each line: JSON turns -0 into 0
          expect(scanPieces(cut(text, cuts)).map((t) => JSON.parse(t))).toEqual(
            lines.map((l) => JSON.parse(l)),
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('numbers rows and lines (JSONL: blank lines count as lines, not rows)', () => {
    const seen: [number, number][] = [];
    const s = new RowScanner('mem', (_t, r, l) => seen.push([r, l]));
    s.push('\n[\n {"a": "x\\ny"},\n\n {"b": 1}, 7\n]\n');
    s.end();
    expect(seen).toEqual([
      [1, 3],
      [2, 5],
      [3, 5],
    ]);
    const lines: [number, number][] = [];
    const j = new RowScanner('mem', (_t, r, l) => lines.push([r, l]));
    j.push('{"a":1}\n\n{"a":2}\r\n   \n{"a":3}');
    j.end();
    expect(lines).toEqual([
      [1, 1],
      [2, 3],
      [3, 5],
    ]);
  });

  it('treats empty input and [] as no rows', () => {
    expect(scanPieces([' \n '])).toEqual([]);
    expect(scanPieces(['[', ' ', ']'])).toEqual([]);
  });

  it('reports structural damage with the line', () => {
    expect(() => scanPieces(['[{"a":1}\n{"a":2}]'])).toThrow(
      /mem: line 2: expected "," or "]" after row 1/,
    );
    expect(() => scanPieces(['[{"a":1},]'])).toThrow(/expected a row after ","/);
    expect(() => scanPieces(['[{"a":1}] x'])).toThrow(/text after the closing/);
    expect(() => scanPieces(['[{"a":1},\n{"a":"}'])).toThrow(
      /line 2: truncated: the file ends inside row 2/,
    );
    expect(() => scanPieces(['[{"a":1}'])).toThrow(/truncated: the array is not closed/);
    expect(() => scanPieces(['x'])).toThrow(FormatError);
  });
});

describe('readAlpacaRows', () => {
  it('reads alpaca_seed.json with 7-byte chunks exactly as JSON.parse does, with rows and lines', async () => {
    const rows = await collect(readAlpacaRows(seedPath, { chunkSize: 7 }));
    expect(rows.map(strip)).toEqual(readJson(seedPath));
    // each row of the file spans 5 lines, after the opening "["
    expect(rows.slice(0, 3).map((r) => [r.row, r.line])).toEqual([
      [1, 2],
      [2, 7],
      [3, 12],
    ]);
    expect(rows[174]).toMatchObject({ row: 175, line: 872, file: seedPath });
  });

  it('flattens Stanford Alpaca seed tasks: seed_tasks.jsonl gives the rows of alpaca_seed.json', async () => {
    const rows = await collect(
      readAlpacaRows(defaultAlpacaPath('seed_tasks.jsonl'), { chunkSize: 1000 }),
    );
    expect(rows.map(strip)).toEqual(readJson(seedPath));
    expect(rows[9]).toMatchObject({ row: 10, line: 10, instance: 1 });
  });

  it('reads escaped quotes, braces and multi-byte characters at every chunk size from 1 to 9', async () => {
    const path = fixture('escapes.json');
    const expected = readJson(path);
    for (let chunkSize = 1; chunkSize <= 9; chunkSize++) {
      expect((await collect(readAlpacaRows(path, { chunkSize }))).map(strip)).toEqual(expected);
    }
  });

  it('skips a BOM and reads CRLF files (array and JSONL)', async () => {
    const expected = readJson(fixture('crlf.json'));
    for (const f of ['bom.json', 'crlf.json', 'crlf.jsonl']) {
      const rows = await collect(readAlpacaRows(fixture(f), { chunkSize: 5 }));
      expect(rows.map(strip)).toEqual(expected);
    }
  });

  it('reports progress per chunk up to the file size', async () => {
    const seen: LoadProgress[] = [];
    await collect(readAlpacaRows(seedPath, { chunkSize: 16384, onProgress: (p) => seen.push(p) }));
    const size = readFileSync(seedPath).length;
    expect(seen.length).toBe(Math.ceil(size / 16384) + 1);
    expect(seen.at(-1)).toEqual({ file: seedPath, bytesRead: size, totalBytes: size, rows: 175 });
    for (let i = 1; i < seen.length; i++)
      expect(seen[i].bytesRead).toBeGreaterThanOrEqual(seen[i - 1].bytesRead);
  });

  it('stops at limit', async () => {
    expect(await collect(readAlpacaRows(seedPath, { limit: 3 }))).toHaveLength(3);
  });
});

/** The error of reading a fixture. */
async function errorOf(name: string): Promise<Error> {
  try {
    await collect(readAlpacaRows(fixture(name), { chunkSize: 64 }));
  } catch (err) {
    return err as Error;
  }
  throw new Error(`${name} was read without an error`);
}

describe('malformed rows', () => {
  const cases: [
    string,
    { row: number; line: number; field?: string; reason: string; text: RegExp },
  ][] = [
    [
      'non-string.json',
      {
        row: 2,
        line: 7,
        field: 'output',
        reason: 'not-string',
        text: /"output" must be a string, got number/,
      },
    ],
    [
      'missing-instruction.json',
      {
        row: 3,
        line: 12,
        field: 'instruction',
        reason: 'missing-field',
        text: /"instruction" is missing/,
      },
    ],
    [
      'empty-output.json',
      { row: 2, line: 7, field: 'output', reason: 'empty-field', text: /"output" is empty/ },
    ],
    ['bad-line.jsonl', { row: 3, line: 4, reason: 'malformed-json', text: /malformed JSON/ }],
    [
      'seed-bad-instance.jsonl',
      {
        row: 2,
        line: 2,
        field: 'instances[1].output',
        reason: 'missing-field',
        text: /row 2 instance 2 \(line 2\): "instances\[1\]\.output" is missing/,
      },
    ],
  ];
  for (const [name, want] of cases) {
    it(`${name}: an AlpacaRowError naming file, row, line and field`, async () => {
      const err = await errorOf(name);
      expect(err).toBeInstanceOf(AlpacaRowError);
      expect(err).toBeInstanceOf(FormatError);
      const e = err as AlpacaRowError;
      expect({ row: e.row, line: e.line, field: e.field, reason: e.reason }).toEqual({
        row: want.row,
        line: want.line,
        field: want.field,
        reason: want.reason,
      });
      expect(e.message).toContain(`${fixture(name)}: row ${want.row}`);
      expect(e.message).toContain(`(line ${want.line})`);
      expect(e.message).toMatch(want.text);
    });
  }

  it('truncated.json and missing-comma.json: a FormatError with file and line (never skipped)', async () => {
    const t = await errorOf('truncated.json');
    expect(t).toBeInstanceOf(FormatError);
    expect(t.message).toMatch(/truncated\.json: line 12: truncated: the file ends inside row 3/);
    const m = await errorOf('missing-comma.json');
    expect(m.message).toMatch(/missing-comma\.json: line 7: expected "," or "]" after row 1/);
    await expect(
      collect(readAlpacaRows(fixture('truncated.json'), { skipInvalid: true })),
    ).rejects.toThrow(/truncated/);
  });

  it('skipInvalid: keeps the valid rows and hands every skipped one to onSkip', async () => {
    const skipped: AlpacaRowError[] = [];
    const rows = await collect(
      readAlpacaRows(fixture('mixed.json'), { skipInvalid: true, onSkip: (e) => skipped.push(e) }),
    );
    expect(rows.map((r) => r.row)).toEqual([1, 8]);
    expect(skipped.map((e) => [e.row, e.reason, e.field])).toEqual([
      [2, 'not-object', undefined],
      [3, 'missing-field', 'output'],
      [4, 'not-string', 'instruction'],
      [5, 'not-string', 'input'],
      [6, 'empty-field', 'output'],
      [7, 'malformed-json', undefined],
    ]);
  });

  it('allows extra fields and reports them', async () => {
    const extra: string[] = [];
    const rows = await collect(
      readAlpacaRows(fixture('extra-fields.json'), { onExtraField: (f) => extra.push(f) }),
    );
    expect(rows).toHaveLength(3);
    expect(extra.sort()).toEqual(['category', 'source', 'source']);
  });

  it('a missing file is an IOError', async () => {
    await expect(collect(readAlpacaRows(fixture('nope.json')))).rejects.toThrow(IOError);
  });
});
