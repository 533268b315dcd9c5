import { FormatError } from './errors';

export type RopeScaling =
  | { type: 'default' }
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

/** The LlamaConfig fields the model uses (Hugging Face config.json, transformers 4 or 5). */
export interface LlamaConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** RoPE scaling: 'default', 'linear' with a factor, or Llama 3's frequency-dependent 'llama3'. */
  ropeScaling: RopeScaling;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  vocabSize: number;
  bosTokenId?: number;
  eosTokenId?: number | number[];
}

function int(
  json: Record<string, unknown>,
  key: string,
  source: string,
  fallback?: number,
): number {
  const v = json[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
    throw new FormatError(`${source}: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/** Parses and validates config.json (rope_theta top-level in transformers 4, rope_parameters in 5). */
export function parseLlamaConfig(json: unknown, source = 'config.json'): LlamaConfig {
  if (typeof json !== 'object' || json === null)
    throw new FormatError(`${source}: expected a JSON object`);
  const c = json as Record<string, unknown>;
  if (c.model_type !== undefined && c.model_type !== 'llama')
    throw new FormatError(`${source}: model_type '${c.model_type}' is not 'llama'`);
  const hiddenSize = int(c, 'hidden_size', source);
  const numAttentionHeads = int(c, 'num_attention_heads', source);
  const numKeyValueHeads = int(c, 'num_key_value_heads', source, numAttentionHeads);
  if (numAttentionHeads % numKeyValueHeads !== 0)
    throw new FormatError(
      `${source}: ${numAttentionHeads} heads are not a multiple of ${numKeyValueHeads} KV heads`,
    );
  const headDim = int(c, 'head_dim', source, hiddenSize / numAttentionHeads);
  const params = (c.rope_parameters ?? c.rope_scaling ?? {}) as Record<string, unknown>;
  const ropeTheta = Number(params.rope_theta ?? c.rope_theta ?? 10000);
  if (!(ropeTheta > 0)) throw new FormatError(`${source}: rope_theta must be positive`);
  const ropeType = String(params.rope_type ?? params.type ?? 'default');
  let ropeScaling: LlamaConfig['ropeScaling'];
  if (ropeType === 'default') ropeScaling = { type: 'default' };
  else if (ropeType === 'linear') ropeScaling = { type: 'linear', factor: Number(params.factor) };
  else if (ropeType === 'llama3') {
    ropeScaling = {
      type: 'llama3',
      factor: Number(params.factor),
      lowFreqFactor: Number(params.low_freq_factor),
      highFreqFactor: Number(params.high_freq_factor),
      originalMaxPositionEmbeddings: Number(params.original_max_position_embeddings),
    };
    const { lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings } = ropeScaling;
    if (
      !(lowFreqFactor > 0 && highFreqFactor > lowFreqFactor) ||
      !(Number.isInteger(originalMaxPositionEmbeddings) && originalMaxPositionEmbeddings > 0)
    )
      throw new FormatError(
        `${source}: llama3 rope scaling needs low_freq_factor > 0, high_freq_factor > low_freq_factor and a positive integer original_max_position_embeddings`,
      );
  } else
    throw new FormatError(
      `${source}: rope scaling '${ropeType}' is not supported (supported: default, linear, llama3)`,
    );
  if (ropeScaling.type !== 'default' && !(ropeScaling.factor > 0))
    throw new FormatError(`${source}: ${ropeScaling.type} rope scaling needs a positive factor`);
  const eps = Number(c.rms_norm_eps ?? 1e-6);
  if (!(eps > 0)) throw new FormatError(`${source}: rms_norm_eps must be positive`);
  return {
    hiddenSize,
    intermediateSize: int(c, 'intermediate_size', source),
    numHiddenLayers: int(c, 'num_hidden_layers', source),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    rmsNormEps: eps,
    ropeTheta,
    ropeScaling,
    maxPositionEmbeddings: int(c, 'max_position_embeddings', source, 2048),
    tieWordEmbeddings: Boolean(c.tie_word_embeddings ?? false),
    vocabSize: int(c, 'vocab_size', source),
    bosTokenId: typeof c.bos_token_id === 'number' ? c.bos_token_id : undefined,
    eosTokenId: (c.eos_token_id as number | number[] | undefined) ?? undefined,
  };
}
