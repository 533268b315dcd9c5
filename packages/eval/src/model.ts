/** What a language model must offer to be evaluated: a tokenizer and batched next-token scores. */
export interface ScoringModel {
  /**
   * Token ids of `text`. With `addSpecialTokens` (the default) the tokenizer's own special tokens
   * are added, as Hugging Face's `tokenizer.encode(text)` does (BOS first for LLaMA).
   */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  /** The longest input the model runs on (its context length). */
  readonly maxLength: number;
  /**
   * The token that stands in for an empty context (lm-evaluation-harness's `prefix_token_id`:
   * BOS, or EOS where there is no BOS). Needed only for requests whose context is "".
   */
  readonly prefixTokenId?: number;
  /**
   * Scores each sequence `s` of the batch (2 ≤ s.length ≤ maxLength + 1) with one forward pass over
   * `s[:-1]`: `logProbs[t] = log p(s[t+1] | s[0..t])` and `greedy[t] = argmax_v p(v | s[0..t])`, both
   * of length `s.length - 1`. With `opts.lastRow`, also the whole log-softmax row (vocabulary size)
   * of the last position, so that other final tokens can be scored from the same pass.
   * Implementations may pad the batch (right padding keeps causal outputs unchanged).
   */
  score(batch: number[][], opts?: { lastRow?: boolean }): Promise<SequenceScores[]>;
}

export interface SequenceScores {
  logProbs: Float32Array;
  greedy: Int32Array;
  lastRow?: Float32Array;
}

/** Progress of a long evaluation: `done` of `total` units (model sequences or ppl windows). */
export interface Progress {
  task: string;
  phase: 'tokenize' | 'score';
  done: number;
  total: number;
}

export type ProgressCallback = (p: Progress) => void;
