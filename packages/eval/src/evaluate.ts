import { InvalidArgumentError, assertIntInRange } from '@edkm/core';
import {
  type LoglikelihoodRequest,
  type ScoreOptions,
  loglikelihoodTokens,
  tokenRequest,
} from './loglikelihood';
import { argmax, mean, meanStderr } from './metrics';
import type { ScoringModel } from './model';
import { type PerplexityOptions, type PerplexityResult, perplexity } from './perplexity';
import { readText } from './rows';
import { type McDoc, type McTaskName, type Metric, TASKS, isMcTask, loadTask } from './tasks';

/** Per-document details (with `samples: true`). */
export interface McSample {
  source: string;
  gold: number;
  /** Log-likelihood of each choice. */
  lls: number[];
  isGreedy: boolean[];
  pred: number;
  predNorm: number;
}

export interface McResult {
  task: McTaskName;
  /** Documents evaluated. */
  n: number;
  acc: number;
  acc_stderr: number | null;
  /** Only for tasks whose harness YAML reports it (not winogrande, boolq). */
  acc_norm?: number;
  acc_norm_stderr?: number | null;
  metrics: Metric[];
  /** Loglikelihood requests (one per choice). */
  requests: number;
  /** Sequences actually run through the model after de-duplication and sharing. */
  forwardSequences: number;
  seconds: number;
  samples?: McSample[];
}

export type EvalResult = McResult | PerplexityResult;
export type TaskName = McTaskName | 'ppl';

interface CommonOptions extends Omit<ScoreOptions, 'task'> {
  model: ScoringModel;
}

export interface McEvaluateOptions extends CommonOptions {
  task: McTaskName;
  /** A task file in its original format (JSONL, or a JSON array of rows). */
  dataPath?: string;
  /** Documents built already (instead of `dataPath`). */
  docs?: McDoc[];
  /** PIQA's labels file (default `<name>-labels.lst` beside the data). */
  labelsPath?: string;
  limit?: number;
  /** Keep per-document log-likelihoods and predictions in the result. */
  samples?: boolean;
}

export interface PplEvaluateOptions extends CommonOptions, Omit<PerplexityOptions, 'task'> {
  task: 'ppl';
  /** A UTF-8 text file. */
  dataPath?: string;
  text?: string;
}

export type EvaluateOptions = McEvaluateOptions | PplEvaluateOptions;

/** Caches `encode` (contexts repeat across a document's choices). */
function memoEncode(model: ScoringModel): ScoringModel {
  const cache = new Map<string, number[]>();
  return {
    maxLength: model.maxLength,
    prefixTokenId: model.prefixTokenId,
    score: (b, o) => model.score(b, o),
    encode(text, opts) {
      const key = (opts?.addSpecialTokens === false ? '0' : '1') + text;
      let ids = cache.get(key);
      if (!ids) {
        ids = model.encode(text, opts);
        cache.set(key, ids);
      }
      return ids;
    },
  };
}

/** Scores prepared documents and aggregates the harness's metrics. */
export async function evaluateDocs(
  model: ScoringModel,
  task: McTaskName,
  docs: McDoc[],
  opts: Omit<McEvaluateOptions, 'model' | 'task' | 'docs' | 'dataPath' | 'labelsPath'> = {},
): Promise<McResult> {
  const t0 = performance.now();
  if (opts.limit !== undefined) {
    docs = docs.slice(0, assertIntInRange('limit', opts.limit, 0, Number.MAX_SAFE_INTEGER));
  }
  const requests: LoglikelihoodRequest[] = docs.flatMap((d) => d.requests);
  const encoder = memoEncode(model);
  const tokenRequests = requests.map((r, i) => {
    if (i % 64 === 0)
      opts.onProgress?.({ task, phase: 'tokenize', done: i, total: requests.length });
    return tokenRequest(encoder, r);
  });
  opts.onProgress?.({ task, phase: 'tokenize', done: requests.length, total: requests.length });
  let forwardSequences = 0;
  const results = await loglikelihoodTokens(model, tokenRequests, {
    ...opts,
    task,
    onProgress: (p) => {
      forwardSequences = p.total;
      opts.onProgress?.(p);
    },
  });
  const acc: number[] = [];
  const accNorm: number[] = [];
  const samples: McSample[] = [];
  let k = 0;
  for (const doc of docs) {
    const rs = results.slice(k, k + doc.requests.length);
    k += doc.requests.length;
    const lls = rs.map((r) => r.logLikelihood);
    const pred = argmax(lls);
    const predNorm = argmax(lls.map((ll, i) => ll / doc.choiceLengths[i]));
    acc.push(pred === doc.gold ? 1 : 0);
    accNorm.push(predNorm === doc.gold ? 1 : 0);
    if (opts.samples) {
      const isGreedy = rs.map((r) => r.isGreedy);
      samples.push({ source: doc.source, gold: doc.gold, lls, isGreedy, pred, predNorm });
    }
  }
  const metrics = [...TASKS[task].metrics];
  return {
    task,
    n: docs.length,
    acc: mean(acc),
    acc_stderr: meanStderr(acc),
    ...(metrics.includes('acc_norm')
      ? { acc_norm: mean(accNorm), acc_norm_stderr: meanStderr(accNorm) }
      : {}),
    metrics,
    requests: requests.length,
    forwardSequences,
    seconds: (performance.now() - t0) / 1000,
    ...(opts.samples ? { samples } : {}),
  };
}

/**
 * Evaluates a model on one task: a multiple-choice task file (zero-shot, as lm-evaluation-harness
 * v0.4 scores it) or the perplexity of a text file.
 */
export function evaluate(opts: McEvaluateOptions): Promise<McResult>;
export function evaluate(opts: PplEvaluateOptions): Promise<PerplexityResult>;
export function evaluate(opts: EvaluateOptions): Promise<EvalResult>;
export async function evaluate(opts: EvaluateOptions): Promise<EvalResult> {
  const { model, task } = opts;
  if (task === 'ppl') {
    const text = opts.text ?? (opts.dataPath !== undefined ? readText(opts.dataPath) : undefined);
    if (text === undefined) throw new InvalidArgumentError('ppl needs `dataPath` or `text`');
    return perplexity(model, text, opts);
  }
  if (!isMcTask(task)) {
    throw new InvalidArgumentError(
      `unknown task ${JSON.stringify(task)}; known: ${Object.keys(TASKS).join(', ')}, ppl`,
    );
  }
  let docs = opts.docs;
  if (!docs) {
    if (opts.dataPath === undefined)
      throw new InvalidArgumentError(`${task} needs \`dataPath\` or \`docs\``);
    docs = loadTask(task, opts.dataPath, { labelsPath: opts.labelsPath, limit: opts.limit });
  }
  return evaluateDocs(model, task, docs, opts);
}
