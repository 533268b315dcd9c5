import { InvalidArgumentError, assertIntInRange } from '@edkm/core';
import { type ScoreOptions, scoreSequences } from './loglikelihood';
import type { ScoringModel } from './model';

/** One window of the sliding-window recipe: tokens [begin, end), scoring window positions ≥ scoreFrom. */
export interface PplWindow {
  begin: number;
  end: number;
  /** First scored position inside the window (≥ 1: position 0 has no context in the window). */
  scoreFrom: number;
}

/**
 * The windows of Hugging Face's "Perplexity of fixed-length models" recipe over `n` tokens: a
 * window of `window` tokens starts every `stride` tokens; each scores its last
 * `trgLen = end − prevEnd` tokens (those the previous window did not score), except its first
 * token, which has no context inside the window (the labels' shift). Scored tokens: n − 1 when
 * stride < window; n − (number of windows) when stride ≥ window. Windows that would score nothing
 * (a final window of one token) are left out.
 */
export function pplWindows(n: number, window: number, stride: number): PplWindow[] {
  assertIntInRange('window', window, 2, Number.MAX_SAFE_INTEGER);
  assertIntInRange('stride', stride, 1, Number.MAX_SAFE_INTEGER);
  const out: PplWindow[] = [];
  let prevEnd = 0;
  for (let begin = 0; begin < n; begin += stride) {
    const end = Math.min(begin + window, n);
    const trgLen = end - prevEnd;
    const scoreFrom = Math.max(1, end - begin - trgLen);
    if (scoreFrom < end - begin) out.push({ begin, end, scoreFrom });
    prevEnd = end;
    if (end === n) break;
  }
  return out;
}

export interface PerplexityOptions extends ScoreOptions {
  /** Tokens per window (default: the model's maximum length). */
  window?: number;
  /** Tokens between window starts (default: `window`, i.e. disjoint windows). */
  stride?: number;
}

export interface PerplexityResult {
  task: 'ppl';
  /** exp(nll). */
  ppl: number;
  /** Mean negative log-likelihood per scored token (nats). */
  nll: number;
  /** Tokens of the text, BOS included. */
  tokens: number;
  /** Tokens whose log-likelihood was scored. */
  scoredTokens: number;
  windows: number;
  window: number;
  stride: number;
  seconds: number;
}

/** Perplexity of token ids (BOS included if wanted) with the sliding-window recipe. */
export async function perplexityOfTokens(
  model: ScoringModel,
  ids: number[],
  opts: PerplexityOptions = {},
): Promise<PerplexityResult> {
  const t0 = performance.now();
  const window = opts.window ?? model.maxLength;
  const stride = opts.stride ?? window;
  if (window > model.maxLength) {
    throw new InvalidArgumentError(
      `window ${window} exceeds the model's maximum length ${model.maxLength}`,
    );
  }
  if (ids.length < 2) {
    throw new InvalidArgumentError(
      `perplexity needs at least 2 tokens, the text has ${ids.length}`,
    );
  }
  const windows = pplWindows(ids.length, window, stride);
  const scores = await scoreSequences(
    model,
    windows.map((w) => ids.slice(w.begin, w.end)),
    { ...opts, task: opts.task ?? 'ppl' },
  );
  let nllSum = 0;
  let scored = 0;
  windows.forEach((w, k) => {
    const lp = scores[k].logProbs;
    for (let j = w.scoreFrom; j < w.end - w.begin; j++) nllSum -= lp[j - 1];
    scored += w.end - w.begin - w.scoreFrom;
  });
  const nll = nllSum / scored;
  return {
    task: 'ppl',
    ppl: Math.exp(nll),
    nll,
    tokens: ids.length,
    scoredTokens: scored,
    windows: windows.length,
    window,
    stride,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Perplexity of a text: tokenized once with the tokenizer's special tokens (BOS once, first). */
export function perplexity(
  model: ScoringModel,
  text: string,
  opts: PerplexityOptions = {},
): Promise<PerplexityResult> {
  return perplexityOfTokens(model, model.encode(text), opts);
}
