import { InvalidArgumentError, seededRandom, tf } from '@edkm/core';
import type { LlamaConfig } from './config';
import type { KVCache, LlamaModel } from './model';

export interface GenerateOptions {
  maxNewTokens?: number;
  /** Pick the most likely token (default when no temperature is given). */
  greedy?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  /** > 1 discourages tokens already in the sequence (Hugging Face's rule). */
  repetitionPenalty?: number;
  seed?: number;
  /** Stop after any of these tokens (default: the config's EOS). */
  eosIds?: number[];
  /** Called with every new token as soon as it is chosen. */
  onToken?: (id: number) => void;
  /**
   * Replay one-token steps as a recorded device graph where the backend can (WebGPU; default
   * true): the same tokens with one submission per token instead of one trip through tfjs per op.
   */
  graph?: boolean;
}

/** Chooses the next token from one row of logits (modified in place). */
export function sampleToken(
  logits: Float32Array,
  seen: number[],
  opts: GenerateOptions,
  random: () => number,
): number {
  const penalty = opts.repetitionPenalty ?? 1;
  if (penalty !== 1) {
    for (const id of new Set(seen))
      logits[id] = logits[id] > 0 ? logits[id] / penalty : logits[id] * penalty;
  }
  const greedy = opts.greedy ?? opts.temperature === undefined;
  if (greedy) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  const temperature = opts.temperature ?? 1;
  if (!(temperature > 0))
    throw new InvalidArgumentError(`temperature must be positive, got ${temperature}`);
  let order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
  if (opts.topK && opts.topK > 0) order = order.slice(0, opts.topK);
  const max = logits[order[0]];
  let probs = order.map((i) => Math.exp((logits[i] - max) / temperature));
  let total = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / total);
  const topP = opts.topP ?? 1;
  if (topP < 1) {
    let acc = 0;
    let keep = 0;
    while (keep < probs.length && acc < topP) acc += probs[keep++];
    order = order.slice(0, keep);
    probs = probs.slice(0, keep);
    total = probs.reduce((a, b) => a + b, 0);
    probs = probs.map((p) => p / total);
  }
  let x = random();
  for (let i = 0; i < probs.length; i++) {
    x -= probs[i];
    if (x < 0) return order[i];
  }
  return order[order.length - 1];
}

/**
 * The generation loop of any KV-cached causal LM: `step(ids, cache)` runs the new positions
 * (continuing and growing `cache`) and returns the logits of the last one. Stops after
 * `maxNewTokens`, at an EOS id, or at `maxPositions`. The cache is released at the end.
 */
export async function generateWith(
  step: (ids: number[], cache: KVCache) => Promise<Float32Array>,
  promptIds: number[],
  opts: GenerateOptions & { maxPositions: number; defaultEosIds: number[] },
): Promise<number[]> {
  if (promptIds.length === 0) throw new InvalidArgumentError('generate: the prompt is empty');
  const eos = opts.eosIds ?? opts.defaultEosIds;
  const maxNew = opts.maxNewTokens ?? 64;
  const random = seededRandom(opts.seed ?? 0);
  const cache: KVCache = { keys: [], values: [], length: 0 };
  const out: number[] = [];
  let next: number[] = promptIds;
  try {
    for (let i = 0; i < maxNew; i++) {
      if (cache.length + next.length > opts.maxPositions) break;
      const row = await step(next, cache);
      const id = sampleToken(row, [...promptIds, ...out], opts, random);
      out.push(id);
      opts.onToken?.(id);
      if (eos.includes(id)) break;
      next = [id];
    }
  } finally {
    for (const t of [...cache.keys, ...cache.values]) t.dispose();
  }
  return out;
}

/**
 * generateWith for a model whose `forward(ids, cache)` returns the logits of the new positions with
 * the vocabulary last ([1, T, V] or [T, V]): the next token's logits are the last row (the tensor
 * is disposed once read); `config` gives the position limit and the default EOS ids.
 */
export function generateFromLogits(
  forward: (ids: number[], cache: KVCache) => tf.Tensor | Promise<tf.Tensor>,
  config: Pick<LlamaConfig, 'vocabSize' | 'maxPositionEmbeddings' | 'eosTokenId'>,
  promptIds: number[],
  opts: GenerateOptions = {},
): Promise<number[]> {
  const V = config.vocabSize;
  return generateWith(
    async (ids, cache) => {
      const logits = await forward(ids, cache);
      const last = tf.tidy(() => logits.reshape([-1, V]).slice([ids.length - 1, 0], [1, V]));
      const row = Float32Array.from((await last.data()) as Float32Array);
      tf.dispose([logits, last]);
      return row;
    },
    promptIds,
    {
      ...opts,
      maxPositions: config.maxPositionEmbeddings,
      defaultEosIds: [config.eosTokenId ?? []].flat(),
    },
  );
}

/** Generates after `promptIds` with a KV cache (one position per step after the prompt). */
export function generate(
  model: LlamaModel,
  promptIds: number[],
  opts: GenerateOptions = {},
): Promise<number[]> {
  return generateFromLogits(
    (ids, cache) => model.forward([ids], { cache }),
    model.config,
    promptIds,
    opts,
  );
}
