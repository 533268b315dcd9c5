export type { Progress, ProgressCallback, ScoringModel, SequenceScores } from './model';
export {
  encodePair,
  loglikelihood,
  loglikelihoodTokens,
  scoreSequences,
  tokenRequest,
  type LoglikelihoodRequest,
  type LoglikelihoodResult,
  type ScoreOptions,
  type TokenRequest,
} from './loglikelihood';
export {
  perplexity,
  perplexityOfTokens,
  pplWindows,
  type PerplexityOptions,
  type PerplexityResult,
  type PplWindow,
} from './perplexity';
export {
  MC_TASKS,
  TASKS,
  hellaswagPreprocess,
  isMcTask,
  loadTask,
  readLabels,
  type LoadTaskOptions,
  type McDoc,
  type McTaskName,
  type McTaskSpec,
  type Metric,
} from './tasks';
export {
  evaluate,
  evaluateDocs,
  type EvalResult,
  type EvaluateOptions,
  type McEvaluateOptions,
  type McResult,
  type McSample,
  type PplEvaluateOptions,
  type TaskName,
} from './evaluate';
export { argmax, mean, meanStderr } from './metrics';
export { formatTable, progressLine } from './report';
export { readRows, type Row } from './rows';
export { fromLlama, type FromLlamaOptions, type LlamaLike } from './llama';
export { fromLogitsFn, scoreWithLogits, type LogitsFn, type LogitsModelOptions } from './tfjs';
