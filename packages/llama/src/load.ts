import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { tf } from '@edkm/core';
import { CheckpointReader } from './checkpoint';
import { type LlamaConfig, parseLlamaConfig } from './config';
import { FormatError, IOError } from './errors';
import { LlamaModel } from './model';
import { type TensorToWrite, writeSafetensors } from './safetensors';
import { Tokenizer } from './tokenizer';

export interface LoadedLlama {
  model: LlamaModel;
  tokenizer: Tokenizer;
  config: LlamaConfig;
  generationConfig: Record<string, unknown>;
  dir: string;
}

function readJson(path: string, required = true): Record<string, unknown> | undefined {
  if (!existsSync(path)) {
    if (required) throw new IOError(`missing ${path}`);
    return undefined;
  }
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new FormatError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * Reads every tensor of model.safetensors (or the shards named by model.safetensors.index.json)
 * into tensors at once. loadLlama streams instead; this is for small models and tools.
 */
export function readWeights(dir: string): Map<string, tf.Tensor> {
  const reader = new CheckpointReader(dir);
  const out = new Map<string, tf.Tensor>();
  try {
    for (const name of reader.names()) out.set(name, reader.tensor(name));
  } finally {
    reader.close();
  }
  return out;
}

export interface LoadLlamaOptions {
  /**
   * The weights, by Hugging Face name, instead of reading model.safetensors (e.g. dequantized
   * from a palettized export): a map (copied into the model's variables; the caller keeps its
   * tensors) or a function that makes each weight on demand (the model takes each one over).
   */
  weights?: Map<string, tf.Tensor> | ((name: string) => tf.Tensor);
}

/** A model folder's config, tokenizer and generation config, without its weights. */
export function readLlamaFolder(dir: string): Omit<LoadedLlama, 'model'> {
  if (!existsSync(dir)) throw new IOError(`model folder ${dir} does not exist`);
  const config = parseLlamaConfig(readJson(join(dir, 'config.json')), join(dir, 'config.json'));
  const tokenizer = new Tokenizer(
    readJson(join(dir, 'tokenizer.json'))!,
    readJson(join(dir, 'tokenizer_config.json'), false) ?? {},
  );
  const generationConfig = readJson(join(dir, 'generation_config.json'), false) ?? {};
  return { config, tokenizer, generationConfig, dir };
}

/** Loads a Hugging Face LLaMA folder: config, weights, tokenizer, generation config. */
export function loadLlama(dir: string, opts: LoadLlamaOptions = {}): LoadedLlama {
  const { config, tokenizer, generationConfig } = readLlamaFolder(dir);
  if (opts.weights)
    return {
      model: new LlamaModel(config, opts.weights),
      tokenizer,
      config,
      generationConfig,
      dir,
    };
  // streamed: the shards' headers are checked against the config first, then each tensor is
  // read, decoded, moved to the device and released before the next one
  const reader = new CheckpointReader(dir, config);
  try {
    const model = new LlamaModel(config, (name) => reader.tensor(name));
    return { model, tokenizer, config, generationConfig, dir };
  } finally {
    reader.close();
  }
}

/** Writes the model's weights as safetensors in bf16, fp16 or f32. */
export async function saveWeights(
  model: LlamaModel,
  path: string,
  dtype: 'bf16' | 'fp16' | 'f32' = 'bf16',
): Promise<void> {
  const { toHalfBits } = await import('@edkm/core');
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, w] of model.getWeights()) {
    const data = (await w.data()) as Float32Array;
    tensors[name] =
      dtype === 'f32'
        ? { dtype: 'F32', shape: w.shape, data }
        : {
            dtype: dtype === 'bf16' ? 'BF16' : 'F16',
            shape: w.shape,
            data: toHalfBits(data, dtype),
          };
  }
  writeSafetensors(path, tensors, { format: 'pt' });
}

/** The model shipped with the repository (models/edkm-tiny), found from this package. */
export function defaultModelDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'models', 'edkm-tiny');
    if (existsSync(join(candidate, 'config.json'))) return candidate;
    dir = dirname(dir);
  }
  throw new IOError('cannot find models/edkm-tiny above the @edkm/llama package');
}
