import { readFileSync } from 'node:fs';
import { type AlpacaBatch, type AlpacaPosition, loadAlpaca } from '@edkm/alpaca';
import { IOError, InvalidArgumentError } from '@edkm/core';
import type { Tokenizer } from '@edkm/llama';

/** One training micro-batch, in the form `LlamaModel.loss` takes. */
export interface TrainBatch {
  inputIds: number[][];
  labels: number[][];
  attentionMask?: number[][];
  segmentIds?: number[][];
  positionIds?: number[][];
  /** Tokens whose loss counts. */
  tokens: number;
}

/**
 * A stream of training batches that a checkpoint can resume exactly: `position()` after a batch,
 * given back to `open(…, position)`, continues with the batch that would have come next.
 */
export interface TrainData {
  readonly description: string;
  next(): TrainBatch;
  position(): unknown;
}

export interface DataOptions {
  batch: number;
  seq: number;
  seed: number;
  /** Text files: leave out the last N characters (held out for evaluation). */
  holdoutChars: number;
  /** Alpaca files: pack several examples per row (else right padding). */
  packing: boolean;
}

/** Opens `.txt` files as language-model text and `.json` / `.jsonl` as Alpaca instruction data. */
export async function openTrainData(
  path: string,
  tokenizer: Tokenizer,
  opts: DataOptions,
  position?: unknown,
): Promise<TrainData> {
  if (/\.txt$/i.test(path)) return TextData.open(path, tokenizer, opts, position);
  if (/\.jsonl?$/i.test(path)) return AlpacaData.open(path, tokenizer, opts, position);
  throw new InvalidArgumentError(
    `--data ${path}: expected a .txt file (plain text) or a .json / .jsonl file of Alpaca rows`,
  );
}

/** SplitMix32 of (seed, counter): a window start that needs no state to resume. */
function hash(seed: number, counter: number): number {
  let z = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(counter, 0xc2b2ae35)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x7feb352d) >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0x846ca68b) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * Plain text: tokenized once; every sample is a window of `seq` tokens at a position drawn from
 * (seed, sample counter), nanoGPT style. The position is the sample counter.
 */
class TextData implements TrainData {
  readonly description: string;
  private counter: number;

  private constructor(
    private readonly tokens: Uint16Array | Uint32Array,
    private readonly opts: DataOptions,
    counter: number,
    path: string,
  ) {
    this.counter = counter;
    this.description = `${path}: ${tokens.length.toLocaleString('en-US')} tokens of text, windows of ${opts.seq}`;
  }

  static open(path: string, tokenizer: Tokenizer, opts: DataOptions, position?: unknown) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new IOError(`cannot read --data ${path}: ${(err as Error).message}`, { cause: err });
    }
    if (opts.holdoutChars > 0) text = text.slice(0, Math.max(0, text.length - opts.holdoutChars));
    const ids = tokenizer.encode(text, { addSpecialTokens: false });
    if (ids.length < opts.seq + 1)
      throw new InvalidArgumentError(
        `--data ${path} has ${ids.length} tokens, fewer than one window of --seq ${opts.seq}`,
      );
    const tokens = tokenizer.vocabSize <= 65536 ? Uint16Array.from(ids) : Uint32Array.from(ids);
    const counter = position === undefined ? 0 : Number((position as { sample: number }).sample);
    if (!Number.isSafeInteger(counter) || counter < 0)
      throw new InvalidArgumentError(`bad text data position ${JSON.stringify(position)}`);
    return new TextData(tokens, opts, counter, path);
  }

  next(): TrainBatch {
    const { batch, seq, seed } = this.opts;
    const span = this.tokens.length - seq + 1;
    const inputIds: number[][] = [];
    for (let b = 0; b < batch; b++) {
      const start = hash(seed, this.counter++) % span;
      inputIds.push(Array.from(this.tokens.subarray(start, start + seq)));
    }
    return { inputIds, labels: inputIds, tokens: batch * (seq - 1) };
  }

  position(): unknown {
    return { sample: this.counter };
  }
}

/** Alpaca rows through @edkm/alpaca: templates, prompt masking, padding or packing, epochs. */
class AlpacaData implements TrainData {
  private constructor(
    readonly description: string,
    private readonly batches: Generator<AlpacaBatch>,
    private last: AlpacaPosition | undefined,
  ) {}

  static async open(path: string, tokenizer: Tokenizer, opts: DataOptions, position?: unknown) {
    const data = await loadAlpaca(path, { tokenizer, maxLength: opts.seq, skipInvalid: false });
    if (data.size === 0) throw new InvalidArgumentError(`--data ${path} holds no usable example`);
    const s = data.stats();
    const skipped = data.report.skipped.total;
    const description = `${path}: ${data.size} Alpaca examples, ${s.tokens.toLocaleString('en-US')} tokens (${s.truncated} truncated${skipped ? `, ${skipped} skipped` : ''}), ${opts.packing ? 'packed' : 'padded'} to ${opts.seq}`;
    const batches = data.batches({
      batchSize: opts.batch,
      packing: opts.packing,
      shuffle: true,
      seed: opts.seed,
      epochs: Number.POSITIVE_INFINITY,
      resume: position as AlpacaPosition | undefined,
    });
    return new AlpacaData(description, batches, position as AlpacaPosition | undefined);
  }

  next(): TrainBatch {
    const { value, done } = this.batches.next();
    if (done) throw new InvalidArgumentError('the Alpaca data ran out of batches');
    this.last = value.position;
    const tokens = value.labels.reduce((n, row) => n + row.filter((y) => y !== -100).length, 0);
    return { ...value, tokens };
  }

  position(): unknown {
    return this.last;
  }
}
