import { FormatError } from './errors';

/** Called with the JSON text of each top-level row, its 1-based row number and first line. */
export type RowTextHandler = (text: string, row: number, line: number) => void;

export type RowFileFormat = 'array' | 'jsonl';

const NL = 10;
const CR = 13;
const TAB = 9;
const SPACE = 32;
const QUOTE = 34;
const COMMA = 44;
const BACKSLASH = 92;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const BOM = 0xfeff;

enum State {
  Start = 0, // before the first non-whitespace character: decides array or JSONL
  ArrayOpen = 1, // after '[': a value or ']'
  BeforeValue = 2, // after ',': a value
  InContainer = 3, // inside an object/array row, outside strings
  InString = 4, // inside a string of a row
  InPrimitive = 5, // a top-level number/true/false/null row
  AfterValue = 6, // after a row: ',' or ']'
  Done = 7, // after the closing ']': whitespace only
  Lines = 8, // JSONL
}

const isSpace = (c: number) => c === SPACE || c === NL || c === CR || c === TAB;

/**
 * Incremental splitter of an Alpaca file into row texts, fed with decoded chunks of any size.
 * The first non-whitespace character picks the format: '[' a JSON array (each top-level element
 * is a row: a small scanner tracks strings, escapes and bracket depth, so the file is never parsed
 * whole), '{' JSON Lines (each non-blank line is a row). A BOM is skipped. Structural damage of an
 * array (truncation, missing comma, text after ']') is a FormatError with the line; what a row
 * contains is the handler's business (JSON.parse + validation).
 */
export class RowScanner {
  private state = State.Start;
  private depth = 0;
  private escape = false;
  private parts: string[] = []; // text of the current row from earlier chunks
  private row = 0;
  private line = 1;
  private rowLine = 1;
  private formatFound?: RowFileFormat;

  constructor(
    private readonly file: string,
    private readonly onRow: RowTextHandler,
  ) {}

  /** The detected format (undefined until the first non-whitespace character). */
  get format(): RowFileFormat | undefined {
    return this.formatFound;
  }

  /** Rows emitted so far. */
  get rows(): number {
    return this.row;
  }

  push(chunk: string): void {
    if (this.state === State.Lines) {
      this.pushLines(chunk, 0);
      return;
    }
    let start = this.parts.length > 0 || this.inRow() ? 0 : -1; // start of the current row here
    const n = chunk.length;
    for (let i = 0; i < n; i++) {
      const c = chunk.charCodeAt(i);
      switch (this.state) {
        case State.InString:
          if (c === NL) this.line++;
          if (this.escape) this.escape = false;
          else if (c === BACKSLASH) this.escape = true;
          else if (c === QUOTE) {
            this.state = State.InContainer;
            if (this.depth === 0) {
              this.emit(chunk, start, i + 1);
              start = -1;
            }
          }
          break;
        case State.InContainer:
          if (c === QUOTE) this.state = State.InString;
          else if (c === OPEN_BRACE || c === OPEN_BRACKET) this.depth++;
          else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
            if (--this.depth === 0) {
              this.emit(chunk, start, i + 1);
              start = -1;
            }
          } else if (c === NL) this.line++;
          break;
        case State.InPrimitive:
          if (isSpace(c) || c === COMMA || c === CLOSE_BRACKET) {
            this.emit(chunk, start, i);
            start = -1;
            i--; // the delimiter is read again in AfterValue
          }
          break;
        case State.ArrayOpen:
        case State.BeforeValue:
          if (isSpace(c)) {
            if (c === NL) this.line++;
          } else if (c === CLOSE_BRACKET && this.state === State.ArrayOpen) {
            this.state = State.Done;
          } else if (c === CLOSE_BRACKET || c === COMMA) {
            this.fail(`expected a row after "," but found "${chunk[i]}"`);
          } else {
            start = i;
            this.rowLine = this.line;
            if (c === OPEN_BRACE || c === OPEN_BRACKET) {
              this.depth = 1;
              this.state = State.InContainer;
            } else if (c === QUOTE) {
              this.depth = 0;
              this.state = State.InString;
            } else {
              this.state = State.InPrimitive;
            }
          }
          break;
        case State.AfterValue:
          if (c === COMMA) this.state = State.BeforeValue;
          else if (c === CLOSE_BRACKET) this.state = State.Done;
          else if (c === NL) this.line++;
          else if (!isSpace(c)) this.fail(`expected "," or "]" after row ${this.row}`);
          break;
        case State.Done:
          if (c === NL) this.line++;
          else if (!isSpace(c)) this.fail('text after the closing "]"');
          break;
        case State.Start:
          if (c === NL) this.line++;
          else if (c === OPEN_BRACKET) {
            this.state = State.ArrayOpen;
            this.formatFound = 'array';
          } else if (c === OPEN_BRACE) {
            this.state = State.Lines;
            this.formatFound = 'jsonl';
            this.pushLines(chunk, i);
            return;
          } else if (!isSpace(c) && c !== BOM) {
            this.fail(`expected "[" (JSON array) or "{" (JSON Lines), found "${chunk[i]}"`);
          }
          break;
      }
    }
    if (start >= 0 && this.inRow()) this.parts.push(chunk.slice(start));
  }

  /** Call after the last chunk: emits a last JSONL line, and checks that an array is closed. */
  end(): void {
    if (this.state === State.Lines) {
      if (this.parts.length > 0) this.emitLine(this.parts.join(''));
      this.parts.length = 0;
    } else if (this.state === State.InPrimitive) {
      this.emit('', -1, 0);
      this.fail('truncated: the array is not closed with "]"');
    } else if (this.inRow()) {
      this.line = this.rowLine;
      this.fail(`truncated: the file ends inside row ${this.row + 1}`);
    } else if (this.state !== State.Start && this.state !== State.Done) {
      this.fail('truncated: the array is not closed with "]"');
    }
  }

  private inRow(): boolean {
    return (
      this.state === State.InContainer ||
      this.state === State.InString ||
      this.state === State.InPrimitive
    );
  }

  private emit(chunk: string, start: number, end: number): void {
    let text = chunk.slice(Math.max(start, 0), end);
    if (this.parts.length > 0) {
      this.parts.push(text);
      text = this.parts.join('');
      this.parts.length = 0;
    }
    this.state = State.AfterValue;
    this.onRow(text, ++this.row, this.rowLine);
  }

  private pushLines(chunk: string, from: number): void {
    let pos = from;
    for (;;) {
      const nl = chunk.indexOf('\n', pos);
      if (nl < 0) {
        if (pos < chunk.length) this.parts.push(chunk.slice(pos));
        return;
      }
      let text = chunk.slice(pos, nl);
      if (this.parts.length > 0) {
        this.parts.push(text);
        text = this.parts.join('');
        this.parts.length = 0;
      }
      this.emitLine(text);
      this.line++;
      pos = nl + 1;
    }
  }

  private emitLine(text: string): void {
    let end = text.length;
    while (end > 0 && isSpace(text.charCodeAt(end - 1))) end--;
    let start = 0;
    while (start < end && isSpace(text.charCodeAt(start))) start++;
    if (start === end) return; // blank line
    this.onRow(
      start === 0 && end === text.length ? text : text.slice(start, end),
      ++this.row,
      this.line,
    );
  }

  private fail(message: string): never {
    throw new FormatError(`${this.file}: line ${this.line}: ${message}`);
  }
}
