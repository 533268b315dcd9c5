import { InvalidArgumentError } from '@edkm/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluate, perplexity, perplexityOfTokens, pplWindows } from '../src/index';
import { FakeModel, PieceTokenizer, prefixHash } from './fake';

const tok = new PieceTokenizer(['a', 'b', 'c', 'd', ' ', 'ab', 'cd']);
const V = tok.vocabSize;

/** Brute force: −Σ log p(x_i | x_{begin..i−1}) over each window's scored positions, in float64. */
function bruteNll(m: FakeModel, ids: number[], window: number, stride: number) {
  let nll = 0;
  let n = 0;
  let prevEnd = 0;
  for (let begin = 0; begin < ids.length; begin += stride) {
    const end = Math.min(begin + window, ids.length);
    // HF: labels = ids[begin:end] with all but the last trg_len set to −100, then shifted by one
    const labels = ids
      .slice(begin, end)
      .map((t, j) => (j < end - begin - (end - prevEnd) ? -100 : t));
    for (let j = 1; j < labels.length; j++) {
      if (labels[j] === -100) continue;
      nll -= m.next(ids.slice(begin, begin + j))[labels[j]];
      n++;
    }
    prevEnd = end;
    if (end === ids.length) break;
  }
  return { nll, n };
}

describe('pplWindows (Hugging Face sliding-window recipe)', () => {
  it('stride < window: every token but the first scored once', () => {
    expect(pplWindows(10, 4, 2)).toEqual([
      { begin: 0, end: 4, scoreFrom: 1 }, // scores 1..3
      { begin: 2, end: 6, scoreFrom: 2 }, // trg_len 2: tokens 4, 5
      { begin: 4, end: 8, scoreFrom: 2 },
      { begin: 6, end: 10, scoreFrom: 2 },
    ]);
  });
  it('stride = window: disjoint windows, the first token of each has no context', () => {
    expect(pplWindows(10, 4, 4)).toEqual([
      { begin: 0, end: 4, scoreFrom: 1 },
      { begin: 4, end: 8, scoreFrom: 1 },
      { begin: 8, end: 10, scoreFrom: 1 },
    ]);
    // a last window of one token scores nothing and is left out (HF's loss would be NaN)
    expect(pplWindows(9, 4, 4)).toHaveLength(2);
  });
  it('text shorter than the window: one window', () => {
    expect(pplWindows(3, 8, 4)).toEqual([{ begin: 0, end: 3, scoreFrom: 1 }]);
  });
  it('stride > window skips tokens', () => {
    expect(pplWindows(10, 3, 5)).toEqual([
      { begin: 0, end: 3, scoreFrom: 1 },
      { begin: 5, end: 8, scoreFrom: 1 },
    ]);
  });
  it('scored tokens: n − 1 for stride < window, n − windows for stride ≥ window (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 200 }),
        fc.integer({ min: 2, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        (n, w, s) => {
          const ws = pplWindows(n, w, s);
          const scored = ws.reduce((k, x) => k + x.end - x.begin - x.scoreFrom, 0);
          if (s < w) expect(scored).toBe(n - 1);
          else if (s === w) expect(scored).toBe(n - Math.ceil(n / w));
          // each token scored at most once, always with at least one token of context
          const seen = new Set<number>();
          for (const x of ws)
            for (let i = x.begin + x.scoreFrom; i < x.end; i++) {
              expect(seen.has(i)).toBe(false);
              seen.add(i);
            }
        },
      ),
    );
  });
});

describe('perplexity', () => {
  const text = 'abcd abcd dcba ab cd a b c d abab cdcd ';
  it('equals the brute-force NLL of the recipe for any window and stride', async () => {
    const m = new FakeModel(tok, prefixHash(V), 16);
    const ids = m.encode(text);
    for (const [window, stride] of [
      [16, 16],
      [16, 8],
      [16, 1],
      [5, 3],
      [4, 4],
      [3, 7],
      [2, 1],
    ]) {
      const r = await perplexityOfTokens(m, ids, { window, stride, batchSize: 3 });
      const b = bruteNll(m, ids, window, stride);
      expect(r.scoredTokens).toBe(b.n);
      expect(r.nll).toBeCloseTo(b.nll / b.n, 5);
      expect(r.ppl).toBeCloseTo(Math.exp(b.nll / b.n), 4);
    }
  });
  it('window ≥ length: the plain per-token NLL over the whole text (BOS once, first)', async () => {
    const m = new FakeModel(tok, prefixHash(V), 64);
    const ids = m.encode(text);
    expect(ids[0]).toBe(1);
    expect(ids.filter((t) => t === 1)).toHaveLength(1);
    const r = await perplexity(m, text, { window: 64, stride: 32 });
    expect(r).toMatchObject({
      task: 'ppl',
      tokens: ids.length,
      scoredTokens: ids.length - 1,
      windows: 1,
    });
    expect(r.nll).toBeCloseTo(-m.sumLogProbs(ids, 1) / (ids.length - 1), 5);
  });
  it('through evaluate(), with defaults window = maxLength, stride = window', async () => {
    const m = new FakeModel(tok, prefixHash(V), 8);
    const r = await evaluate({ model: m, task: 'ppl', text });
    expect(r).toMatchObject({ window: 8, stride: 8 });
    expect(r.scoredTokens).toBe(r.tokens - r.windows);
  });
  it('rejects bad windows and too-short texts', async () => {
    const m = new FakeModel(tok, prefixHash(V), 8);
    await expect(perplexity(m, text, { window: 9 })).rejects.toThrow(
      /exceeds the model's maximum length 8/,
    );
    await expect(perplexity(m, text, { window: 1 })).rejects.toThrow(InvalidArgumentError);
    await expect(perplexity(m, text, { window: 4, stride: 0 })).rejects.toThrow(/stride/);
    await expect(perplexity(m, '')).rejects.toThrow(/at least 2 tokens/);
  });
});
