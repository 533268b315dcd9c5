import type { tf } from '@edkm/core';
import type { ScoringModel } from './model';
import { fromLogitsFn } from './tfjs';

/**
 * What the adapter needs of `loadLlama(dir)` from @edkm/llama (typed structurally, so any model
 * with the same shape fits): `model.logits(ids [B, T]) → logits [B, T, V]`, the tokenizer, and
 * the context length.
 */
export interface LlamaLike {
  model: { logits(ids: tf.Tensor2D): tf.Tensor3D };
  tokenizer: {
    encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
    bosId?: number;
    eosId: number;
    padId?: number;
  };
  config: { maxPositionEmbeddings: number };
}

export interface FromLlamaOptions {
  /** Context length used for truncation and windows (default: `max_position_embeddings`). */
  maxLength?: number;
}

/** A ScoringModel over a loaded LLaMA (`fromLlama(loadLlama(dir))`). */
export function fromLlama(loaded: LlamaLike, opts: FromLlamaOptions = {}): ScoringModel {
  const { model, tokenizer, config } = loaded;
  return fromLogitsFn({
    logits: (ids) => model.logits(ids),
    encode: (text, o) => tokenizer.encode(text, o),
    maxLength: opts.maxLength ?? config.maxPositionEmbeddings,
    prefixTokenId: tokenizer.bosId ?? tokenizer.eosId,
    padId: tokenizer.padId ?? tokenizer.eosId,
  });
}
