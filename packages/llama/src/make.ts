import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { f32ToBf16Bits } from '@edkm/core';
import { expectedWeightShapes } from './checkpoint';
import { type LlamaConfig, parseLlamaConfig } from './config';
import { IOError, InvalidArgumentError } from './errors';
import type { TensorSpec } from './safetensors';
import { type ShardedWriteResult, writeShardedSafetensors } from './sharded';

/** The shapes of real LLaMA models (Hugging Face config.json fields). */
export const MODEL_PRESETS = {
  'tinyllama-1.1b': {
    hidden_size: 2048,
    intermediate_size: 5632,
    num_hidden_layers: 22,
    num_attention_heads: 32,
    num_key_value_heads: 4,
    vocab_size: 32000,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    rope_parameters: { rope_type: 'default', rope_theta: 10000 },
    tie_word_embeddings: false,
  },
  'llama-2-7b': {
    hidden_size: 4096,
    intermediate_size: 11008,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 32,
    vocab_size: 32000,
    max_position_embeddings: 4096,
    rms_norm_eps: 1e-5,
    rope_parameters: { rope_type: 'default', rope_theta: 10000 },
    tie_word_embeddings: false,
  },
  // Llama 3.1 8B's config: rope θ 500,000 with the 'llama3' frequency scaling, 128,256 tokens
  'llama-3-8b': {
    hidden_size: 4096,
    intermediate_size: 14336,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    vocab_size: 128256,
    max_position_embeddings: 131072,
    rms_norm_eps: 1e-5,
    rope_parameters: {
      rope_type: 'llama3',
      rope_theta: 500000,
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
    },
    tie_word_embeddings: false,
  },
} as const;
export type ModelPreset = keyof typeof MODEL_PRESETS;

export interface MakeModelOptions {
  preset: ModelPreset;
  /** Overrides of the preset's shape. heads must divide hidden (head_dim = hidden / heads). */
  layers?: number;
  hidden?: number;
  intermediate?: number;
  heads?: number;
  kvHeads?: number;
  vocab?: number;
  tieEmbeddings?: boolean;
  /** Standard deviation of the random weights (default 0.02, transformers' initializer_range). */
  sigma?: number;
  seed?: number;
  /** Largest shard (bytes of tensor data; default 5 GiB, transformers' default). */
  maxShardBytes?: number;
  /** The tokenizer to copy (tokenizer.json + tokenizer_config.json); default models/edkm-tiny. */
  tokenizerFrom: string;
}

export interface MakeModelResult extends ShardedWriteResult {
  dir: string;
  config: LlamaConfig;
  parameters: number;
  seconds: number;
}

/** Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9). */
function normalQuantile(p: number): number {
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972,
    -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734,
    4.374664141464968, 2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    );
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
  );
}

/**
 * bf16 bits of N(0, σ²) at the 65,536 quantiles (i + ½) / 65,536: a random 16-bit index picks a
 * normal sample at bf16 precision (its 8-bit mantissa is coarser than the table's steps), so a
 * weight costs one xorshift half-word and one table read — about a second per GB.
 */
function normalBf16Table(sigma: number): Uint16Array {
  return Uint16Array.from({ length: 65536 }, (_, i) =>
    f32ToBf16Bits(sigma * normalQuantile((i + 0.5) / 65536)),
  );
}

/**
 * Writes a Hugging Face LLaMA folder of a real model's shapes with random weights, for tests and
 * benchmarks: config.json, sharded bf16 safetensors (linear and embedding weights N(0, σ²), norms
 * 1), the tokenizer of `tokenizerFrom` (ids below its vocabulary are all it produces; the rest of
 * the embedding rows exist and are random) and generation_config.json. Streamed: memory stays at
 * a few MB whatever the model's size.
 */
export function makeRandomLlama(dir: string, opts: MakeModelOptions): MakeModelResult {
  const t0 = performance.now();
  const preset = MODEL_PRESETS[opts.preset];
  if (!preset)
    throw new InvalidArgumentError(
      `unknown preset '${opts.preset}' (presets: ${Object.keys(MODEL_PRESETS).join(', ')})`,
    );
  const tokJson = join(opts.tokenizerFrom, 'tokenizer.json');
  if (!existsSync(tokJson)) throw new IOError(`no tokenizer.json in ${opts.tokenizerFrom}`);
  const tokenizer = JSON.parse(readFileSync(tokJson, 'utf8')) as { model?: { vocab?: unknown } };
  const tokVocab = Object.keys(tokenizer.model?.vocab ?? {}).length;
  const hidden = opts.hidden ?? preset.hidden_size;
  const heads = opts.heads ?? preset.num_attention_heads;
  const json: Record<string, unknown> = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    hidden_act: 'silu',
    initializer_range: opts.sigma ?? 0.02,
    ...preset,
    hidden_size: hidden,
    intermediate_size: opts.intermediate ?? preset.intermediate_size,
    num_hidden_layers: opts.layers ?? preset.num_hidden_layers,
    num_attention_heads: heads,
    num_key_value_heads: Math.min(opts.kvHeads ?? preset.num_key_value_heads, heads),
    head_dim: hidden / heads,
    vocab_size: opts.vocab ?? preset.vocab_size,
    tie_word_embeddings: opts.tieEmbeddings ?? preset.tie_word_embeddings,
    bos_token_id: 1,
    eos_token_id: 2,
    dtype: 'bfloat16',
    use_cache: true,
  };
  if (!Number.isInteger(hidden / heads) || (hidden / heads) % 2 !== 0)
    throw new InvalidArgumentError(
      `hidden ${hidden} / heads ${heads} must be an even integer head dimension`,
    );
  const config = parseLlamaConfig(json, `preset ${opts.preset}`);
  if (config.vocabSize < tokVocab)
    throw new InvalidArgumentError(
      `vocab ${config.vocabSize} is smaller than the tokenizer's ${tokVocab} tokens (${tokJson})`,
    );
  const sigma = opts.sigma ?? 0.02;
  if (!(sigma > 0)) throw new InvalidArgumentError(`sigma must be positive, got ${sigma}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(json, null, 2)}\n`);
  copyFileSync(tokJson, join(dir, 'tokenizer.json'));
  const tokConfig = join(opts.tokenizerFrom, 'tokenizer_config.json');
  if (existsSync(tokConfig)) copyFileSync(tokConfig, join(dir, 'tokenizer_config.json'));
  writeFileSync(
    join(dir, 'generation_config.json'),
    `${JSON.stringify({ bos_token_id: 1, eos_token_id: 2, do_sample: false }, null, 2)}\n`,
  );

  const table = normalBf16Table(sigma);
  const one = f32ToBf16Bits(1);
  let state = ((opts.seed ?? 0) * 2654435761 + 0x9e3779b9) | 0 || 1;
  const chunk = new Uint16Array(1 << 20);
  const words = new Uint32Array(chunk.buffer);
  // two weights per xorshift32 draw, written as one 32-bit word (little-endian: low half first)
  const fill = (s: number, count: number): number => {
    for (let j = 0; j < count; j++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      words[j] = table[s & 0xffff] | (table[(s >>> 16) & 0xffff] << 16);
    }
    return s;
  };
  const specs: TensorSpec[] = [...expectedWeightShapes(config)].map(([name, shape]) => ({
    name,
    dtype: 'BF16',
    shape,
  }));
  let parameters = 0;
  const result = writeShardedSafetensors(
    dir,
    specs,
    (spec, write) => {
      const n = spec.shape.reduce((a, b) => a * b, 1);
      parameters += n;
      const isNorm = spec.shape.length === 1;
      for (let at = 0; at < n; at += chunk.length) {
        const m = Math.min(chunk.length, n - at);
        if (isNorm) chunk.fill(one, 0, m);
        else state = fill(state, (m + 1) >> 1);
        write(chunk.subarray(0, m));
      }
    },
    // scratch data: no fsync (the rename still makes each shard appear whole)
    { maxShardBytes: opts.maxShardBytes, durable: false },
  );
  return {
    ...result,
    dir,
    config,
    parameters,
    seconds: (performance.now() - t0) / 1000,
  };
}
