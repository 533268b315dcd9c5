import { InvalidArgumentError, ShapeError, assertIntInRange } from '@edkm/core';
import type { ProgressCallback, ScoringModel, SequenceScores } from './model';
import { pyRstrip } from './text';

/** One lm-evaluation-harness `loglikelihood` request: score `continuation` after `context`. */
export interface LoglikelihoodRequest {
  context: string;
  continuation: string;
}

export interface LoglikelihoodResult {
  /** Sum of the continuation tokens' log-probabilities (natural log). */
  logLikelihood: number;
  /** Whether every continuation token is the model's arg-max at its position. */
  isGreedy: boolean;
  /** Number of continuation tokens scored. */
  tokens: number;
}

/** A request as token ids: the sequence to score (already left-truncated) and its scored tail. */
export interface TokenRequest {
  tokens: number[];
  contLen: number;
}

export interface ScoreOptions {
  /** Sequences per forward pass (default 8). */
  batchSize?: number;
  onProgress?: ProgressCallback;
  /** Name reported to `onProgress`. */
  task?: string;
}

/**
 * The harness's `_encode_pair`: trailing whitespace of the context moves to the start of the
 * continuation; `whole = encode(context + continuation)`, `contextEnc = encode(context)` (both with
 * the tokenizer's default special tokens) and the continuation tokens are `whole[contextEnc.length:]`.
 * An empty context becomes `[prefixTokenId]` and the continuation is encoded without special tokens.
 */
export function encodePair(
  model: Pick<ScoringModel, 'encode' | 'prefixTokenId'>,
  context: string,
  continuation: string,
): { contextEnc: number[]; continuationEnc: number[] } {
  if (context === '') {
    const cont = model.encode(continuation, { addSpecialTokens: false });
    const prefix = model.prefixTokenId;
    if (prefix === undefined) {
      throw new InvalidArgumentError('an empty context needs the model to define prefixTokenId');
    }
    return prefix !== cont[0]
      ? { contextEnc: [prefix], continuationEnc: cont }
      : { contextEnc: cont.slice(0, 1), continuationEnc: cont.slice(1) };
  }
  const stripped = pyRstrip(context);
  if (stripped.length < context.length) {
    continuation = context.slice(stripped.length) + continuation;
    context = stripped;
  }
  const whole = model.encode(context + continuation);
  const contextEnc = model.encode(context);
  return { contextEnc, continuationEnc: whole.slice(contextEnc.length) };
}

/**
 * The token sequence the harness scores for one pair: `(context + continuation)` left-truncated to
 * `maxLength + 1` tokens (the model then runs on all but the last).
 */
export function tokenRequest(
  model: Pick<ScoringModel, 'encode' | 'prefixTokenId' | 'maxLength'>,
  req: LoglikelihoodRequest,
): TokenRequest {
  const { contextEnc, continuationEnc } = encodePair(model, req.context, req.continuation);
  const contLen = continuationEnc.length;
  if (contLen === 0) {
    throw new InvalidArgumentError(
      `continuation ${JSON.stringify(req.continuation)} encodes to no tokens after context ${JSON.stringify(req.context.slice(-40))}`,
    );
  }
  if (contLen > model.maxLength) {
    throw new InvalidArgumentError(
      `continuation of ${contLen} tokens is longer than the model's maximum length ${model.maxLength}`,
    );
  }
  const tokens = [...contextEnc, ...continuationEnc].slice(-(model.maxLength + 1));
  return { tokens, contLen };
}

/** Log-likelihoods of (context, continuation) pairs, batched, with shared work done once. */
export async function loglikelihood(
  model: ScoringModel,
  requests: LoglikelihoodRequest[],
  opts: ScoreOptions = {},
): Promise<LoglikelihoodResult[]> {
  const tokenRequests = requests.map((r) => tokenRequest(model, r));
  return loglikelihoodTokens(model, tokenRequests, opts);
}

export async function loglikelihoodTokens(
  model: ScoringModel,
  requests: TokenRequest[],
  opts: ScoreOptions = {},
): Promise<LoglikelihoodResult[]> {
  const scores = await scoreSequences(
    model,
    requests.map((r) => r.tokens),
    opts,
  );
  return requests.map(({ tokens, contLen }, i) => {
    const { logProbs, greedy } = scores[i];
    let logLikelihood = 0;
    let isGreedy = true;
    for (let t = tokens.length - 1 - contLen; t < tokens.length - 1; t++) {
      logLikelihood += logProbs[t];
      if (greedy[t] !== tokens[t + 1]) isGreedy = false;
    }
    return { logLikelihood, isGreedy, tokens: contLen };
  });
}

function compareTokens(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function isPrefix(a: number[], b: number[]): boolean {
  if (a.length > b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * `model.score` for many sequences, running as few forward passes as the causal model allows:
 * identical sequences are run once; a sequence that is a prefix of another is read from the
 * longer one's scores; sequences with the same model input (`s[:-1]`, i.e. the same context and
 * all but the last continuation token) share one pass whose last log-softmax row scores each of
 * their last tokens (the harness's one-token-continuation cache, generalised). The remaining
 * sequences run longest first, `batchSize` per pass, so that padding stays small.
 */
export async function scoreSequences(
  model: ScoringModel,
  seqs: number[][],
  opts: ScoreOptions = {},
): Promise<SequenceScores[]> {
  const batchSize = assertIntInRange('batchSize', opts.batchSize ?? 8, 1, 1 << 20);
  for (const s of seqs) {
    if (s.length < 2 || s.length > model.maxLength + 1) {
      throw new InvalidArgumentError(
        `a scored sequence needs 2..${model.maxLength + 1} tokens, got ${s.length}`,
      );
    }
  }
  // 1. identical sequences
  const uniqueIndex = new Map<string, number>();
  const unique: number[][] = [];
  const uniqueOf = seqs.map((s) => {
    const key = s.join(',');
    let u = uniqueIndex.get(key);
    if (u === undefined) {
      u = unique.length;
      uniqueIndex.set(key, u);
      unique.push(s);
    }
    return u;
  });
  // 2. prefixes: in lexicographic order a prefix of anything is a prefix of its successor
  const order = unique.map((_, i) => i).sort((a, b) => compareTokens(unique[a], unique[b]));
  const root = new Int32Array(unique.length);
  for (let k = order.length - 1; k >= 0; k--) {
    const u = order[k];
    const next = order[k + 1];
    root[u] = next !== undefined && isPrefix(unique[u], unique[next]) ? root[next] : u;
  }
  // 3. roots that share their model input
  const groups = new Map<string, number[]>();
  for (let u = 0; u < unique.length; u++) {
    if (root[u] !== u) continue;
    const key = unique[u].slice(0, -1).join(',');
    const g = groups.get(key);
    if (g) g.push(u);
    else groups.set(key, [u]);
  }
  const runs = [...groups.values()].sort((a, b) => unique[b[0]].length - unique[a[0]].length);
  // 4. forward passes
  const results: SequenceScores[] = new Array(unique.length);
  const total = runs.length;
  opts.onProgress?.({ task: opts.task ?? '', phase: 'score', done: 0, total });
  for (let start = 0; start < runs.length; start += batchSize) {
    const chunk = runs.slice(start, start + batchSize);
    const lastRow = chunk.some((g) => g.length > 1);
    const batch = chunk.map((g) => unique[g[0]]);
    const out = await model.score(batch, { lastRow });
    // let timers and I/O run between batches (progress bars; a cpu backend's data() resolves
    // as a microtask, so without this a long evaluation never yields the event loop)
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (out.length !== batch.length) {
      throw new ShapeError(`model.score returned ${out.length} results for ${batch.length}`);
    }
    chunk.forEach((group, j) => {
      const rep = out[j];
      const len = batch[j].length - 1;
      if (rep.logProbs.length !== len || rep.greedy.length !== len) {
        throw new ShapeError(
          `model.score returned ${rep.logProbs.length} log-probs / ${rep.greedy.length} greedy ids for a sequence of ${len + 1} tokens (expected ${len})`,
        );
      }
      if (group.length > 1 && !rep.lastRow) {
        throw new ShapeError('model.score ignored { lastRow: true }');
      }
      results[group[0]] = { logProbs: rep.logProbs, greedy: rep.greedy };
      for (const u of group.slice(1)) {
        const logProbs = rep.logProbs.slice();
        logProbs[len - 1] = rep.lastRow![unique[u][len]];
        results[u] = { logProbs, greedy: rep.greedy };
      }
    });
    opts.onProgress?.({
      task: opts.task ?? '',
      phase: 'score',
      done: Math.min(start + batchSize, total),
      total,
    });
  }
  // 5. prefixes read from their roots
  for (let u = 0; u < unique.length; u++) {
    if (root[u] === u) continue;
    const r = results[root[u]];
    const len = unique[u].length - 1;
    results[u] = { logProbs: r.logProbs.subarray(0, len), greedy: r.greedy.subarray(0, len) };
  }
  return uniqueOf.map((u) => results[u]);
}
