import type { ScoringModel, SequenceScores } from '../src/index';

export const BOS = 1;
export const EOS = 2;

/**
 * A greedy longest-match tokenizer over a fixed list of pieces (ids from 3; 0 = <unk>), which,
 * like SentencePiece, has pieces with a leading space and merges across word boundaries.
 */
export class PieceTokenizer {
  readonly pieces: string[];
  constructor(pieces: string[]) {
    this.pieces = ['<unk>', '<s>', '</s>', ...pieces];
  }
  get vocabSize(): number {
    return this.pieces.length;
  }
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    const ids = opts.addSpecialTokens === false ? [] : [BOS];
    let i = 0;
    while (i < text.length) {
      let best = 0;
      let len = 1;
      for (let p = 3; p < this.pieces.length; p++) {
        const piece = this.pieces[p];
        const longer = best === 0 ? piece.length >= 1 : piece.length > len;
        if (longer && text.startsWith(piece, i)) {
          best = p;
          len = piece.length;
        }
      }
      ids.push(best);
      i += len;
    }
    return ids;
  }
}

/** Natural log-probabilities of the next token given the whole prefix (a row summing to 1 in prob). */
export type NextLogProbs = (prefix: number[]) => Float64Array;

/** Bigram: the row depends only on the last token. `probs[prev][next]` need not be normalised. */
export function bigram(
  weights: (prev: number, next: number) => number,
  vocab: number,
): NextLogProbs {
  return (prefix) => {
    const prev = prefix[prefix.length - 1];
    const row = new Float64Array(vocab);
    let z = 0;
    for (let v = 0; v < vocab; v++) z += weights(prev, v);
    for (let v = 0; v < vocab; v++) row[v] = Math.log(weights(prev, v) / z);
    return row;
  };
}

/** A row that depends on every token of the prefix and its length (catches any mix-up of contexts). */
export function prefixHash(vocab: number): NextLogProbs {
  return (prefix) => {
    let h = 2166136261;
    for (const t of prefix) h = Math.imul(h ^ (t + 1), 16777619) >>> 0;
    const row = new Float64Array(vocab);
    let z = 0;
    for (let v = 0; v < vocab; v++) {
      h = Math.imul(h ^ (v + 7), 16777619) >>> 0;
      row[v] = ((h >>> 8) % 1000) / 250; // logits in [0, 4)
      z += Math.exp(row[v]);
    }
    const lz = Math.log(z);
    for (let v = 0; v < vocab; v++) row[v] -= lz;
    return row;
  };
}

/** A ScoringModel over a tokenizer and a next-token distribution; records every batch it runs. */
export class FakeModel implements ScoringModel {
  readonly batches: number[][][] = [];
  readonly prefixTokenId = BOS;
  constructor(
    readonly tokenizer: PieceTokenizer,
    readonly next: NextLogProbs,
    readonly maxLength = 64,
  ) {}
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[] {
    return this.tokenizer.encode(text, opts);
  }
  async score(batch: number[][], opts: { lastRow?: boolean } = {}): Promise<SequenceScores[]> {
    this.batches.push(batch.map((s) => [...s]));
    return batch.map((s) => {
      if (s.length < 2 || s.length > this.maxLength + 1) throw new Error(`bad length ${s.length}`);
      const n = s.length - 1;
      const logProbs = new Float32Array(n);
      const greedy = new Int32Array(n);
      let row = new Float64Array(0);
      for (let t = 0; t < n; t++) {
        row = this.next(s.slice(0, t + 1));
        logProbs[t] = row[s[t + 1]];
        let g = 0;
        for (let v = 1; v < row.length; v++) if (row[v] > row[g]) g = v;
        greedy[t] = g;
      }
      return { logProbs, greedy, ...(opts.lastRow ? { lastRow: Float32Array.from(row) } : {}) };
    });
  }
  /** Reference: log p(tokens[from..]) given the preceding tokens, one token at a time in float64. */
  sumLogProbs(tokens: number[], from: number): number {
    let s = 0;
    for (let t = from; t < tokens.length; t++) s += this.next(tokens.slice(0, t))[tokens[t]];
    return s;
  }
  get sequencesRun(): number {
    return this.batches.reduce((n, b) => n + b.length, 0);
  }
}
