import { existsSync } from 'node:fs';
import { InvalidArgumentError } from '@edkm/core';
import {
  MC_TASKS,
  type McResult,
  type PerplexityResult,
  type ScoringModel,
  type TaskName,
  evaluate,
  fromLlama,
  progressLine,
} from '@edkm/eval';
import { Decoder, readLlamaFolder } from '@edkm/llama';
import { type LoadedModel, decoderSource, isPalettized, loadModel } from '@edkm/palettized';
import { requireModelFolder, startBackend } from './backend';

export interface EvalOptions {
  model: string;
  task: string;
  data: string;
  limit?: number;
  batch: number;
  window: number;
  stride: number;
  backend: string;
  /**
   * What computes the logits: 'model' (the dense float32 model, the default), 'decoder' (the
   * inference kernels reading the stored weights: LUTs and packed indices, bf16) or 'w8a8' (the
   * decoder with palettized products on int8 tensor cores, activations quantized per token).
   */
  engine?: 'model' | 'decoder' | 'w8a8';
  /** Draw a progress line on stderr. */
  progress: boolean;
  /** Told which backend 'auto' took (one line). */
  log?: (line: string) => void;
}

/** The JSON of `edkm eval --json`: the task's metrics plus what was evaluated. */
export type EvalResult = (McResult | PerplexityResult) & {
  model: string;
  palettized: boolean;
  engine: 'model' | 'decoder' | 'w8a8';
};

/** Evaluates a 16-bit or palettized model folder on one task (a thin wrapper of @edkm/eval). */
export async function runEval(opts: EvalOptions, loaded?: LoadedModel): Promise<EvalResult> {
  const tasks: string[] = [...MC_TASKS, 'ppl'];
  if (!tasks.includes(opts.task))
    throw new InvalidArgumentError(`unknown --task '${opts.task}' (one of ${tasks.join(', ')})`);
  if (!existsSync(opts.data)) throw new InvalidArgumentError(`--data ${opts.data} does not exist`);
  if (opts.limit !== undefined && !(Number.isSafeInteger(opts.limit) && opts.limit > 0))
    throw new InvalidArgumentError(`--limit must be a positive integer, got ${opts.limit}`);
  const engine = opts.engine ?? 'model';
  if (!['model', 'decoder', 'w8a8'].includes(engine))
    throw new InvalidArgumentError(`unknown --engine '${engine}' (model, decoder or w8a8)`);
  if (engine !== 'model' && loaded)
    throw new InvalidArgumentError(`--engine ${engine} reads a model folder, not a loaded model`);
  if (!loaded) requireModelFolder(opts.model);
  await startBackend(opts.backend, opts.log);
  if (engine !== 'model') return evalDecoder(opts, engine);
  const model = loaded ?? loadModel(opts.model);
  try {
    const result = await score(opts, fromLlama(model));
    return { ...result, model: opts.model, palettized: Boolean(model.palettized), engine };
  } finally {
    if (!loaded) model.model.dispose();
  }
}

/** The task through the Decoder's kernels (the stored weights, as generate reads them). */
async function evalDecoder(opts: EvalOptions, engine: 'decoder' | 'w8a8'): Promise<EvalResult> {
  const { config, tokenizer } = readLlamaFolder(opts.model);
  const source = decoderSource(opts.model);
  const maxLength = opts.task === 'ppl' ? opts.window : config.maxPositionEmbeddings;
  let decoder: Decoder | undefined;
  try {
    decoder = new Decoder(config, source, {
      maxLength,
      batch: opts.batch,
      prefill: engine === 'w8a8' ? 'w8a8' : 'exact',
    });
    const d = decoder;
    const scoring = fromLlama({
      model: { logits: (ids) => d.logits(ids) },
      tokenizer,
      config: { maxPositionEmbeddings: maxLength },
    });
    const result = await score(opts, scoring);
    const palettized = isPalettized(opts.model);
    return { ...result, model: opts.model, palettized, engine };
  } finally {
    decoder?.dispose();
    source.close();
  }
}

async function score(
  opts: EvalOptions,
  scoring: ScoringModel,
): Promise<McResult | PerplexityResult> {
  const onProgress = opts.progress ? progressLine(process.stderr) : undefined;
  const task = opts.task as TaskName;
  const result =
    task === 'ppl'
      ? await evaluate({
          model: scoring,
          task,
          dataPath: opts.data,
          window: opts.window,
          stride: opts.stride,
          batchSize: opts.batch,
          onProgress,
        })
      : await evaluate({
          model: scoring,
          task,
          dataPath: opts.data,
          limit: opts.limit,
          batchSize: opts.batch,
          onProgress,
        });
  if (opts.progress) process.stderr.write('\n');
  return result;
}
