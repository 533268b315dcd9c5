import { FormatError } from '@edkm/core';

export { FormatError, IOError, InvalidArgumentError } from '@edkm/core';

/** Why a row is rejected (the keys of `report.skipped.byReason`). */
export type RowErrorReason =
  | 'malformed-json'
  | 'not-object'
  | 'missing-field'
  | 'not-string'
  | 'empty-field'
  | 'prompt-too-long';

/** Where a row comes from: 1-based row (array element or non-blank JSONL line), 1-based line (0: not from a file). */
export interface RowSource {
  file: string;
  row: number;
  line: number;
  /** 1-based instance of a seed-task row (`instances[k]`), when the row was flattened. */
  instance?: number;
}

/** One invalid row: names the file, row, line and field. `reason` is stable, for counting. */
export class AlpacaRowError extends FormatError {
  readonly file: string;
  readonly row: number;
  readonly line: number;
  readonly instance?: number;
  readonly field?: string;
  readonly reason: RowErrorReason;

  constructor(
    source: RowSource,
    reason: RowErrorReason,
    detail: string,
    field?: string,
    options?: { cause?: unknown },
  ) {
    const where = source.instance === undefined ? '' : ` instance ${source.instance}`;
    const line = source.line > 0 ? ` (line ${source.line})` : '';
    super(`${source.file}: row ${source.row}${where}${line}: ${detail}`, options);
    this.file = source.file;
    this.row = source.row;
    this.line = source.line;
    this.instance = source.instance;
    this.field = field;
    this.reason = reason;
  }
}
