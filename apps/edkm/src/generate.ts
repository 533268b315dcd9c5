import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderExample } from '@edkm/alpaca';
import { InvalidArgumentError } from '@edkm/core';
import { type FlashStats, type PredictorSpec, openFlash, writeFlashLayout } from '@edkm/flash';
import { Decoder, type GenerateOptions, generate, readLlamaFolder, textStream } from '@edkm/llama';
import { type LoadedModel, decoderSource } from '@edkm/palettized';
import { hasTensorCores, requireModelFolder, startBackend } from './backend';

/** LLM-in-a-flash inference: FFN neurons read from disk on demand (@edkm/flash). */
export interface FlashGenerateOptions {
  /** Memory for FFN neurons: '50%' of the FFN bytes, or bytes. */
  memoryBudget: string;
  /** 'all' (exact), or 'low-rank' (the layout's trained predictor). */
  predictor: 'all' | 'low-rank';
  /** low-rank: fraction of each layer's neurons a token computes. */
  neurons: number;
  /** Tokens whose neurons stay in memory. */
  window: number;
  /** Called once with the layout folder when one had to be written for a model folder. */
  onLayout?: (dir: string) => void;
}

export interface GenerateRunOptions extends Omit<GenerateOptions, 'onToken'> {
  model: string;
  prompt: string;
  /** Wrap the prompt in the Stanford Alpaca "no input" template. */
  alpaca: boolean;
  backend: string;
  /** Called with the decoded text of every new token as soon as it is chosen. */
  onText?: (text: string) => void;
  /** Generate with the weights' FFN on disk (`--flash`). */
  flash?: FlashGenerateOptions;
  /** Told which backend 'auto' took (one line). */
  log?: (line: string) => void;
  /**
   * How the prompt's products run (the Decoder's `prefill`): 'exact' (default), or 'w8a8' — int8
   * weights and activations on the int8 tensor cores, products of 64 rows or more (the prompt;
   * decoding steps stay exact): 4.2× the exact prefill of a 2,048-token prompt on a 7B-shaped
   * 3-bit model on an H200, perplexity +0.02 % on edkm-tiny. Without tensor cores the int8
   * products run as a plain loop (slow on webgpu); the log says so.
   */
  prefill?: 'exact' | 'w8a8';
}

export interface GenerateResult {
  prompt_ids: number[];
  ids: number[];
  text: string;
  /** With --flash: bytes read, reads, cache hits, tokens/s, memory. */
  flash?: FlashStats;
}

function promptText(opts: GenerateRunOptions): string {
  return opts.alpaca
    ? renderExample({ instruction: opts.prompt, input: '', output: '' }).prompt
    : opts.prompt;
}

/**
 * Generates from a 16-bit or palettized model folder through the Decoder: the weights stay as
 * stored (LUTs + packed indices, or bf16) and the KV cache is allocated once. A model already
 * loaded (the demo's) generates through its own forward pass.
 */
export async function runGenerate(
  opts: GenerateRunOptions,
  loaded?: LoadedModel,
): Promise<GenerateResult> {
  if (!opts.prompt) throw new InvalidArgumentError('--prompt is empty');
  if (!loaded) requireModelFolder(opts.model);
  if (opts.flash) checkFlashOptions(opts.model, opts.flash);
  const prefill = opts.prefill ?? 'exact';
  if (prefill !== 'exact' && prefill !== 'w8a8')
    throw new InvalidArgumentError(`--prefill must be exact or w8a8, got '${prefill}'`);
  if (prefill === 'w8a8' && (opts.flash || loaded))
    throw new InvalidArgumentError(
      `--prefill w8a8 runs in the Decoder over a model folder${opts.flash ? ', not with --flash' : ''}`,
    );
  const selection = await startBackend(opts.backend, opts.log);
  if (prefill === 'w8a8' && selection.plugin === 'webgpu' && !hasTensorCores(selection.plugin))
    opts.log?.(
      '--prefill w8a8: this device has no int8 subgroup matrices (needs EDKM_WEBGPU_UNSAFE=1 and a GPU that has them): the int8 products run as a plain loop',
    );
  const {
    model: _m,
    prompt: _p,
    alpaca: _a,
    backend: _b,
    log: _l,
    prefill: _pf,
    onText,
    flash,
    ...sampling
  } = opts;
  if (flash) return generateFlash(opts, flash, sampling);
  if (loaded) {
    const promptIds = loaded.tokenizer.encode(promptText(opts));
    const stream = textStream(loaded.tokenizer, onText);
    await generate(loaded.model, promptIds, { ...sampling, onToken: stream.onToken });
    return { prompt_ids: promptIds, ids: stream.ids, text: stream.finish() };
  }
  const { config, tokenizer } = readLlamaFolder(opts.model);
  const promptIds = tokenizer.encode(promptText(opts));
  const maxLength = Math.min(
    config.maxPositionEmbeddings,
    promptIds.length + (sampling.maxNewTokens ?? 64),
  );
  const source = decoderSource(opts.model);
  let decoder: Decoder | undefined;
  try {
    decoder = new Decoder(config, source, { maxLength, prefill });
    const stream = textStream(tokenizer, onText);
    await decoder.generate([promptIds], { ...sampling, onToken: stream.onToken });
    return { prompt_ids: promptIds, ids: stream.ids, text: stream.finish() };
  } finally {
    decoder?.dispose();
    source.close();
  }
}

/** A flash layout folder has ffn.flash; a model folder gets a temporary layout written first. */
/** The --flash arguments, checked before a backend starts; returns the memory budget. */
function checkFlashOptions(dir: string, f: FlashGenerateOptions): string | number {
  if (f.predictor !== 'all' && !existsSync(join(dir, 'ffn.flash')))
    throw new InvalidArgumentError(
      `${dir} is not a flash layout: a learned predictor needs one (edkm flash --model ${dir} --out LAYOUT --train-predictor)`,
    );
  const budget = /^\d+(\.\d+)?%$/.test(f.memoryBudget) ? f.memoryBudget : Number(f.memoryBudget);
  if (typeof budget === 'number' && !(budget > 0))
    throw new InvalidArgumentError(
      `--memory-budget must be a percentage or a byte count, got ${f.memoryBudget}`,
    );
  return budget;
}

async function generateFlash(
  opts: GenerateRunOptions,
  f: FlashGenerateOptions,
  sampling: Omit<GenerateOptions, 'onToken'>,
): Promise<GenerateResult> {
  let dir = opts.model;
  let temporary: string | undefined;
  const budget = checkFlashOptions(dir, f);
  if (!existsSync(join(dir, 'ffn.flash'))) {
    temporary = mkdtempSync(join(tmpdir(), 'edkm-flash-'));
    writeFlashLayout(dir, temporary);
    f.onLayout?.(temporary);
    dir = temporary;
  }
  const predictor: PredictorSpec =
    f.predictor === 'all' ? 'all' : { kind: 'low-rank', topK: f.neurons };
  const model = await openFlash(dir, {
    memoryBudget: budget as never,
    window: f.window,
    predictor,
  });
  try {
    if (!model.tokenizer) throw new InvalidArgumentError(`${dir} has no tokenizer.json`);
    const promptIds = model.tokenizer.encode(promptText(opts));
    const stream = textStream(model.tokenizer, opts.onText);
    await model.generate(promptIds, { ...sampling, onToken: stream.onToken });
    return { prompt_ids: promptIds, ids: stream.ids, text: stream.finish(), flash: model.stats() };
  } finally {
    await model.close();
    if (temporary) rmSync(temporary, { recursive: true, force: true });
  }
}
