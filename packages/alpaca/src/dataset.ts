import { seededRandom } from '@edkm/core';
import { AlpacaRowError, FormatError, InvalidArgumentError, type RowErrorReason } from './errors';
import {
  type AlpacaRecord,
  type LoadProgress,
  type ReadOptions,
  readAlpacaRows,
  validateRow,
} from './read';
import { type AlpacaTemplate, STANFORD_TEMPLATE, templateRenderer } from './template';

/** The label of a position that is not learned (prompt, padding, example boundaries). */
export const IGNORE_INDEX = -100;

/**
 * What the loader needs of a tokenizer (the `Tokenizer` of @edkm/llama fits): `encode` with
 * `addSpecialTokens` adding the model's own specials (BOS for LLaMA), the EOS id, and optionally
 * the pad id (padding uses `padId ?? eosId`; the attention mask tells pads from a real EOS).
 */
export interface AlpacaTokenizer {
  encode(text: string, opts: { addSpecialTokens?: boolean }): number[];
  eosId: number;
  bosId?: number;
  padId?: number;
}

export interface LoadOptions extends Pick<ReadOptions, 'chunkSize' | 'skipInvalid' | 'limit'> {
  tokenizer: AlpacaTokenizer;
  /** Longest example in tokens (prompt + response + EOS); longer ones are truncated. Default 512. */
  maxLength?: number;
  /** Default: Stanford Alpaca's "with input" / "no input" templates. */
  template?: AlpacaTemplate;
  /** Learn the prompt tokens too (default false: prompt labels are -100). */
  trainOnPrompt?: boolean;
  /**
   * How the prompt/response boundary is tokenized. 'separate' (default): `encode(prompt, with
   * specials)` then `encode(response, no specials)`, so the prompt tokens are exactly those the
   * model sees at inference, whatever the tokenizer merges. 'joint': Stanford Alpaca's recipe,
   * `encode(prompt + response)` with the first `encode(prompt).length` tokens masked (its prompt
   * tokens can differ from inference when a merge crosses the boundary).
   */
  boundary?: 'separate' | 'joint';
  /** A row whose prompt alone fills maxLength: skipped and counted (default) or an error. */
  overlongPrompt?: 'skip' | 'error';
  /** Called after every chunk of the file (every 1,000 rows for in-memory rows) and at the end. */
  onProgress?: (p: LoadProgress) => void;
  /** Name used in errors for in-memory rows (default "(rows)"). */
  name?: string;
}

/** What loading found in the source, shared by the parts of a split. */
export interface LoadReport {
  source: string;
  format: 'array' | 'jsonl' | 'rows';
  /** Rows read: valid ones (a seed task counts once per instance) plus invalid ones. */
  rows: number;
  /** Rows not kept, by reason (with skipInvalid, and prompts longer than maxLength). */
  skipped: {
    total: number;
    byReason: Partial<Record<RowErrorReason, number>>;
    /** The first 20 messages, for a log. */
    first: string[];
  };
  /** Fields other than the known ones, and in how many rows (they are ignored). */
  extraFields: Record<string, number>;
}

/** Token statistics of a dataset's examples. Lengths are before truncation; EOS counts as response. */
export interface AlpacaStats {
  examples: number;
  /** Tokens kept (after truncation), BOS and EOS included. */
  tokens: number;
  /** Positions whose label is not -100. */
  learnedTokens: number;
  /** Examples whose response was cut to fit maxLength. */
  truncated: number;
  prompt: { mean: number; max: number };
  response: { mean: number; max: number };
  total: { mean: number; max: number };
}

/** A position in the stream of batches: JSON-serialisable, stored in a checkpoint. */
export interface AlpacaPosition {
  /** 0-based epoch. */
  epoch: number;
  /** Examples of this epoch already consumed (in the epoch's shuffled order). */
  offset: number;
  /** Shuffle seed of the run. */
  seed: number;
}

export interface BatchOptions {
  /** Sequences per batch. */
  batchSize: number;
  /** Pack several examples into each sequence of maxLength (default false: one example per row, right-padded). */
  packing?: boolean;
  /** Reshuffle every epoch (default true); false keeps the file order. */
  shuffle?: boolean;
  /** Shuffle seed (default 0, or the seed of `resume`). */
  seed?: number;
  /** Epochs to run, counted from epoch 0 (default 1; Infinity for an endless stream). */
  epochs?: number;
  /** Continue from the `position` of a batch of an earlier run with the same options. */
  resume?: AlpacaPosition;
  /** Drop an epoch's last batch when it has fewer than batchSize sequences (default false). */
  dropLast?: boolean;
  /** Padding: to the longest example of the batch (default) or always to maxLength. */
  padTo?: 'longest' | 'maxLength';
}

/** Model input for `model.loss(inputIds, labels, { attentionMask, segmentIds, positionIds })`. */
export interface AlpacaBatch {
  inputIds: number[][];
  labels: number[][];
  /** 1 = token, 0 = padding. */
  attentionMask: number[][];
  /** Packing: segment of each position (1, 2, … per row; 0 = padding); attention stays inside. */
  segmentIds?: number[][];
  /** Packing: RoPE positions restarting at 0 for each example. */
  positionIds?: number[][];
  /** Examples in this batch. */
  examples: number;
  /** Non-padding tokens in this batch. */
  tokens: number;
  /** Where to resume to continue after this batch. */
  position: AlpacaPosition;
}

/** One tokenized example. */
export interface AlpacaExample {
  inputIds: number[];
  labels: number[];
  /** Prompt tokens (BOS included); the response + EOS follow. */
  promptLength: number;
  /** Row of the source it comes from (1-based). */
  row: number;
}

/** Token ids of all examples in one growing typed array (16-bit while the ids fit). */
class TokenStore {
  ids: Uint16Array | Uint32Array = new Uint16Array(1 << 16);
  used = 0;
  readonly start: number[] = [];
  readonly length: number[] = [];
  readonly promptLength: number[] = [];
  /** Response tokens + EOS before truncation. */
  readonly fullResponse: number[] = [];
  readonly row: number[] = [];

  /** Appends src[from…to), or one id. */
  append(src: number[] | number, from = 0, to = 1): void {
    const need = this.used + to - from;
    if (need > this.ids.length) {
      const grown = new (this.ids.constructor as Uint16ArrayConstructor)(
        Math.max(need, this.ids.length * 2),
      );
      grown.set(this.ids.subarray(0, this.used));
      this.ids = grown;
    }
    let ids = this.ids;
    for (let i = from; i < to; i++) {
      const id = typeof src === 'number' ? src : src[i];
      if (id > 0xffff && ids instanceof Uint16Array) ids = this.ids = Uint32Array.from(ids);
      else if (!(id >= 0) || !Number.isInteger(id))
        throw new InvalidArgumentError(`tokenizer returned an invalid id ${id}`);
      ids[this.used++] = id;
    }
  }
}

function checkInt(name: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
    throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got ${String(v)}`);
  return v;
}

const epochSeed = (seed: number, epoch: number) => (seed + Math.imul(epoch, 0x9e3779b9)) >>> 0;

/** Fisher–Yates permutation of 0..n-1 from a seed. */
function permutation(n: number, seed: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const rand = seededRandom(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/**
 * Tokenized Alpaca examples (from `loadAlpaca`), with seeded shuffling, splits, and padded or
 * packed batches that can resume from a stored position.
 */
export class AlpacaDataset {
  /** Examples in this dataset. */
  readonly size: number;

  /** @internal use loadAlpaca */
  constructor(
    private readonly store: TokenStore,
    private readonly members: Uint32Array,
    readonly report: LoadReport,
    readonly maxLength: number,
    readonly trainOnPrompt: boolean,
    readonly padId: number,
  ) {
    this.size = members.length;
  }

  /** Example i (0-based, in dataset order) with its labels. */
  example(i: number): AlpacaExample {
    checkInt('example index', i, 0);
    if (i >= this.size) throw new InvalidArgumentError(`example ${i} of ${this.size}`);
    const e = this.members[i];
    const { start, length, promptLength, row } = this.store;
    const inputIds = Array.from(this.store.ids.subarray(start[e], start[e] + length[e]));
    const labels = new Array<number>(length[e]);
    this.writeLabels(e, labels, 0);
    return { inputIds, labels, promptLength: promptLength[e], row: row[e] };
  }

  /** Token statistics of this dataset's examples. */
  stats(): AlpacaStats {
    const { length, promptLength, fullResponse } = this.store;
    let tokens = 0;
    let learned = 0;
    let truncated = 0;
    const sum = { prompt: 0, response: 0, total: 0 };
    const max = { prompt: 0, response: 0, total: 0 };
    for (const e of this.members) {
      const p = promptLength[e];
      const r = fullResponse[e];
      tokens += length[e];
      learned += this.trainOnPrompt ? length[e] - 1 : length[e] - p;
      if (p + r > length[e]) truncated++;
      sum.prompt += p;
      sum.response += r;
      sum.total += p + r;
      max.prompt = Math.max(max.prompt, p);
      max.response = Math.max(max.response, r);
      max.total = Math.max(max.total, p + r);
    }
    const mean = (s: number) => (this.size ? s / this.size : 0);
    return {
      examples: this.size,
      tokens,
      learnedTokens: learned,
      truncated,
      prompt: { mean: mean(sum.prompt), max: max.prompt },
      response: { mean: mean(sum.response), max: max.response },
      total: { mean: mean(sum.total), max: max.total },
    };
  }

  /**
   * A seeded train/validation split: `validation` is a fraction in (0, 1) or a count. Both parts
   * keep the file order (shuffling is the batches' business) and share the tokens.
   */
  split(opts: { validation: number; seed?: number }): {
    train: AlpacaDataset;
    validation: AlpacaDataset;
  } {
    const v = opts.validation;
    const count = v > 0 && v < 1 ? Math.round(v * this.size) : v;
    checkInt('validation', count, 0);
    if (count >= this.size)
      throw new InvalidArgumentError(
        `validation (${count}) must leave training examples of ${this.size}`,
      );
    const order = permutation(this.size, checkInt('seed', opts.seed ?? 0, -(2 ** 31)));
    const pick = (from: number, to: number) =>
      order
        .slice(from, to)
        .sort()
        .map((i) => this.members[i]);
    return {
      train: this.subset(pick(count, this.size)),
      validation: this.subset(pick(0, count)),
    };
  }

  /** The examples at these indices (in this dataset), sharing the tokens. */
  subset(indices: ArrayLike<number>): AlpacaDataset {
    const members = new Uint32Array(indices.length);
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k];
      if (!Number.isInteger(i) || i < 0 || i >= this.size)
        throw new InvalidArgumentError(`subset: index ${i} outside [0, ${this.size})`);
      members[k] = this.members[i];
    }
    return new AlpacaDataset(
      this.store,
      members,
      this.report,
      this.maxLength,
      this.trainOnPrompt,
      this.padId,
    );
  }

  /** The order of the examples in an epoch (indices into this dataset). */
  epochOrder(epoch: number, opts: { seed?: number; shuffle?: boolean } = {}): Uint32Array {
    if (opts.shuffle === false) return Uint32Array.from({ length: this.size }, (_, i) => i);
    return permutation(this.size, epochSeed(opts.seed ?? 0, checkInt('epoch', epoch, 0)));
  }

  /** Batches in an epoch (packing: found by packing that epoch's order). */
  batchesPerEpoch(opts: BatchOptions, epoch = 0): number {
    const batchSize = checkInt('batchSize', opts.batchSize, 1);
    if (!opts.packing) {
      return opts.dropLast ? Math.floor(this.size / batchSize) : Math.ceil(this.size / batchSize);
    }
    const order = this.epochOrder(epoch, opts);
    let count = 0;
    for (let offset = 0; offset < this.size; count++) {
      const plan = this.planPack(order, offset, batchSize);
      if (opts.dropLast && plan.rows < batchSize) break;
      offset += plan.examples;
    }
    return count;
  }

  /**
   * Batches over `epochs` epochs, each epoch in a fresh seeded order. Every batch carries the
   * position after it: `batches({ ...sameOptions, resume: batch.position })` yields exactly the
   * batches an uninterrupted run would have yielded next.
   */
  *batches(opts: BatchOptions): Generator<AlpacaBatch> {
    const batchSize = checkInt('batchSize', opts.batchSize, 1);
    const epochs = opts.epochs ?? 1;
    if (epochs !== Number.POSITIVE_INFINITY) checkInt('epochs', epochs, 0);
    const start = opts.resume ?? { epoch: 0, offset: 0, seed: opts.seed ?? 0 };
    checkPosition(start, this.size);
    if (opts.seed !== undefined && opts.seed !== start.seed) {
      throw new InvalidArgumentError(
        `seed ${opts.seed} differs from the seed ${start.seed} of the resume position`,
      );
    }
    const seed = start.seed;
    const n = this.size;
    if (n === 0) return;
    const packing = opts.packing ?? false;
    const padTo = opts.padTo ?? 'longest';
    let offset = start.offset;
    for (let epoch = start.epoch; epoch < epochs; epoch++, offset = 0) {
      const order = this.epochOrder(epoch, { seed, shuffle: opts.shuffle });
      // the epoch ends where the examples do, or (dropLast) before a batch of < batchSize rows
      const epochDone = (at: number) =>
        at >= n ||
        (opts.dropLast === true &&
          (packing ? this.planPack(order, at, batchSize).rows : n - at) < batchSize);
      while (!epochDone(offset)) {
        const batch = packing
          ? this.packBatch(order, offset, this.planPack(order, offset, batchSize))
          : this.padBatch(order, offset, Math.min(batchSize, n - offset), padTo);
        offset += batch.examples;
        const position = epochDone(offset)
          ? { epoch: epoch + 1, offset: 0, seed }
          : { epoch, offset, seed };
        yield { ...batch, position };
      }
    }
  }

  /** Labels of store example e into out[at…]: -100 on its first token and (unless trainOnPrompt) its prompt. */
  private writeLabels(e: number, out: number[], at: number): void {
    const { ids } = this.store;
    const s = this.store.start[e];
    const len = this.store.length[e];
    const learnFrom = this.trainOnPrompt ? 1 : this.store.promptLength[e];
    for (let j = 0; j < len; j++) out[at + j] = j < learnFrom ? IGNORE_INDEX : ids[s + j];
  }

  private padBatch(
    order: Uint32Array,
    offset: number,
    count: number,
    padTo: 'longest' | 'maxLength',
  ): Omit<AlpacaBatch, 'position'> {
    const { ids, start, length } = this.store;
    let T = 0;
    for (let k = 0; k < count; k++) T = Math.max(T, length[this.members[order[offset + k]]]);
    if (padTo === 'maxLength') T = this.maxLength;
    const inputIds: number[][] = [];
    const labels: number[][] = [];
    const attentionMask: number[][] = [];
    let tokens = 0;
    for (let k = 0; k < count; k++) {
      const e = this.members[order[offset + k]];
      const len = length[e];
      const s = start[e];
      const rowIds = new Array<number>(T).fill(this.padId);
      const rowLabels = new Array<number>(T).fill(IGNORE_INDEX);
      const rowMask = new Array<number>(T).fill(0);
      for (let j = 0; j < len; j++) {
        rowIds[j] = ids[s + j];
        rowMask[j] = 1;
      }
      this.writeLabels(e, rowLabels, 0);
      inputIds.push(rowIds);
      labels.push(rowLabels);
      attentionMask.push(rowMask);
      tokens += len;
    }
    return { inputIds, labels, attentionMask, examples: count, tokens };
  }

  /** Greedy packing from `offset`: examples in order, a new row when the next does not fit. */
  private planPack(
    order: Uint32Array,
    offset: number,
    batchSize: number,
  ): { examples: number; rows: number } {
    const { length } = this.store;
    let rows = 0;
    let fill = this.maxLength; // forces a new row for the first example
    let k = offset;
    for (; k < this.size; k++) {
      const len = length[this.members[order[k]]];
      if (fill + len > this.maxLength) {
        if (rows === batchSize) break;
        rows++;
        fill = 0;
      }
      fill += len;
    }
    return { examples: k - offset, rows };
  }

  private packBatch(
    order: Uint32Array,
    offset: number,
    plan: { examples: number; rows: number },
  ): Omit<AlpacaBatch, 'position'> {
    const { ids, start, length } = this.store;
    const T = this.maxLength;
    const inputIds: number[][] = [];
    const labels: number[][] = [];
    const attentionMask: number[][] = [];
    const segmentIds: number[][] = [];
    const positionIds: number[][] = [];
    let fill = T;
    let segment = 0;
    let tokens = 0;
    for (let k = offset; k < offset + plan.examples; k++) {
      const e = this.members[order[k]];
      const len = length[e];
      if (fill + len > T) {
        inputIds.push(new Array<number>(T).fill(this.padId));
        labels.push(new Array<number>(T).fill(IGNORE_INDEX));
        attentionMask.push(new Array<number>(T).fill(0));
        segmentIds.push(new Array<number>(T).fill(0));
        positionIds.push(new Array<number>(T).fill(0));
        fill = 0;
        segment = 0;
      }
      const r = inputIds.length - 1;
      const rowIds = inputIds[r];
      const rowMask = attentionMask[r];
      const rowSegments = segmentIds[r];
      const rowPositions = positionIds[r];
      const s = start[e];
      segment++;
      for (let j = 0; j < len; j++) {
        rowIds[fill + j] = ids[s + j];
        rowMask[fill + j] = 1;
        rowSegments[fill + j] = segment;
        rowPositions[fill + j] = j;
      }
      this.writeLabels(e, labels[r], fill);
      fill += len;
      tokens += len;
    }
    return {
      inputIds,
      labels,
      attentionMask,
      segmentIds,
      positionIds,
      examples: plan.examples,
      tokens,
    };
  }
}

function checkPosition(p: AlpacaPosition, size: number): void {
  if (typeof p !== 'object' || p === null)
    throw new InvalidArgumentError('resume position must be an object {epoch, offset, seed}');
  checkInt('position.epoch', p.epoch, 0);
  checkInt('position.offset', p.offset, 0);
  checkInt('position.seed', p.seed, -(2 ** 31));
  if (p.offset > size)
    throw new InvalidArgumentError(`position.offset ${p.offset} is beyond the ${size} examples`);
}

function emptyReport(source: string): LoadReport {
  return {
    source,
    format: 'rows',
    rows: 0,
    skipped: { total: 0, byReason: {}, first: [] },
    extraFields: {},
  };
}

function countSkip(report: LoadReport, err: AlpacaRowError): void {
  report.skipped.total++;
  report.skipped.byReason[err.reason] = (report.skipped.byReason[err.reason] ?? 0) + 1;
  if (report.skipped.first.length < 20) report.skipped.first.push(err.message);
}

/** Validated records of in-memory rows (row = 1-based index, no line). */
async function* recordsOfRows(
  rows: Iterable<unknown> | AsyncIterable<unknown>,
  file: string,
  opts: LoadOptions,
  report: LoadReport,
): AsyncGenerator<AlpacaRecord> {
  const pending: AlpacaRecord[] = [];
  const push = (r: AlpacaRecord) => {
    pending.push(r);
  };
  const onExtra = (name: string) => {
    report.extraFields[name] = (report.extraFields[name] ?? 0) + 1;
  };
  let row = 0;
  let kept = 0;
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  for await (const value of rows) {
    row++;
    try {
      validateRow(value, { file, row, line: 0 }, push, onExtra);
    } catch (err) {
      if (!(opts.skipInvalid && err instanceof AlpacaRowError)) throw err;
      report.rows++;
      countSkip(report, err);
    }
    for (const r of pending) {
      if (kept++ >= limit) return;
      yield r;
    }
    pending.length = 0;
    if (row % 1000 === 0) opts.onProgress?.({ file, bytesRead: 0, rows: row });
  }
}

/**
 * Loads Alpaca data and tokenizes it: a file path (JSON array or JSONL, streamed; Stanford
 * Alpaca's seed-task format is flattened) or in-memory rows. Every row is validated (an
 * AlpacaRowError naming file, row, line and field; with `skipInvalid` counted in `report`
 * instead), rendered with the template, tokenized (see `boundary`), EOS appended, and truncated
 * to `maxLength` by cutting the response tail (the prompt is kept whole; a prompt that alone
 * fills maxLength: `overlongPrompt`). Only token ids are kept in memory (2 bytes per token for
 * vocabularies up to 65,536).
 */
export async function loadAlpaca(
  source: string | Iterable<unknown> | AsyncIterable<unknown>,
  opts: LoadOptions,
): Promise<AlpacaDataset> {
  const tok = opts.tokenizer;
  if (!tok || typeof tok.encode !== 'function')
    throw new InvalidArgumentError('loadAlpaca: `tokenizer` with an encode method is required');
  checkInt('tokenizer.eosId', tok.eosId, 0);
  const maxLength = checkInt('maxLength', opts.maxLength ?? 512, 2);
  const padId = tok.padId ?? tok.eosId;
  const boundary = opts.boundary ?? 'separate';
  if (boundary !== 'separate' && boundary !== 'joint')
    throw new InvalidArgumentError(`boundary must be 'separate' or 'joint', got ${boundary}`);
  const render = templateRenderer(opts.template ?? STANFORD_TEMPLATE);
  const file = typeof source === 'string' ? source : (opts.name ?? '(rows)');
  const report = emptyReport(file);
  const store = new TokenStore();

  const records =
    typeof source === 'string'
      ? readAlpacaRows(source, {
          chunkSize: opts.chunkSize,
          skipInvalid: opts.skipInvalid,
          limit: opts.limit,
          onSkip: (err) => {
            report.rows++;
            countSkip(report, err);
          },
          onExtraField: (name) => {
            report.extraFields[name] = (report.extraFields[name] ?? 0) + 1;
          },
          onFormat: (format) => {
            report.format = format;
          },
          onProgress:
            opts.onProgress && ((p) => opts.onProgress?.({ ...p, examples: store.start.length })),
        })
      : recordsOfRows(source, file, opts, report);

  for await (const r of records) {
    report.rows++;
    const { prompt, response } = render(r);
    const promptIds = tok.encode(prompt, { addSpecialTokens: true });
    let ids: number[];
    let responseFrom = 0;
    if (boundary === 'joint') {
      ids = tok.encode(prompt + response, { addSpecialTokens: true });
      responseFrom = Math.min(promptIds.length, ids.length);
    } else {
      ids = tok.encode(response, { addSpecialTokens: false });
    }
    const P = promptIds.length;
    const R = ids.length - responseFrom + 1; // + EOS
    if (P >= maxLength) {
      const err = new AlpacaRowError(
        r,
        'prompt-too-long',
        `the prompt alone has ${P} tokens, maxLength is ${maxLength}`,
      );
      if (opts.overlongPrompt === 'error') throw err;
      countSkip(report, err);
      continue;
    }
    const keep = Math.min(R, maxLength - P); // the prompt whole, the response (+ EOS) cut at the tail
    store.start.push(store.used);
    store.append(promptIds, 0, P);
    store.append(ids, responseFrom, responseFrom + Math.min(keep, R - 1));
    if (keep === R) store.append(tok.eosId);
    store.length.push(P + keep);
    store.promptLength.push(P);
    store.fullResponse.push(R);
    store.row.push(r.row);
  }
  if (typeof source !== 'string')
    opts.onProgress?.({ file, bytesRead: 0, rows: report.rows, examples: store.start.length });
  const n = store.start.length;
  if (n === 0) {
    const why = report.skipped.total
      ? ` (${report.skipped.total} skipped: ${report.skipped.first[0]})`
      : '';
    throw new FormatError(`${file}: no usable rows${why}`);
  }
  const members = new Uint32Array(n);
  for (let i = 0; i < n; i++) members[i] = i;
  return new AlpacaDataset(store, members, report, maxLength, opts.trainOnPrompt ?? false, padId);
}
