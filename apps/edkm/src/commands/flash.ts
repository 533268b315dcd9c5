// `edkm flash`: a flash layout (FFN neurons bundled on disk), optionally with its trained predictor.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InvalidArgumentError } from '@edkm/core';
import { trainPredictor, writeFlashLayout } from '@edkm/flash';
import { defaultModelDir } from '@edkm/llama';
import { type Command, Option } from 'commander';
import { requireModelFolder, startBackend } from '../backend';
import { type CliIO, backendOption, int, orDefault } from './options';

export interface FlashCommandOptions {
  model: string;
  out: string;
  dtype?: 'bf16' | 'fp16' | 'f32';
  /** Fit the low-rank sparsity predictor on `data` (default: the repository's Shakespeare). */
  trainPredictor: boolean;
  data?: string;
  holdoutChars: number;
  rank: number;
  maxTokens: number;
  backend: string;
  /** Told which backend 'auto' took (one line). */
  log?: (line: string) => void;
}

export interface FlashCommandResult {
  out: string;
  ffnBytes: number;
  residentBytes: number;
  /** recall: per layer, on held-out tokens */
  predictor?: { path: string; tokens: number; recall: number[] };
}

/** Writes the layout of a 16-bit or palettized model folder and, if asked, trains its predictor. */
export async function runFlash(o: FlashCommandOptions): Promise<FlashCommandResult> {
  requireModelFolder(o.model);
  const data = o.trainPredictor
    ? orDefault(o.data, '--data', () =>
        join(dirname(defaultModelDir()), '..', 'data', 'tinyshakespeare', 'input.txt'),
      )
    : undefined;
  if (data !== undefined && !existsSync(data))
    throw new InvalidArgumentError(`--data ${data} does not exist`);
  await startBackend(o.backend, o.log);
  const layout = writeFlashLayout(o.model, o.out, { dtype: o.dtype });
  const result: FlashCommandResult = {
    out: layout.dir,
    ffnBytes: layout.ffnBytes,
    residentBytes: layout.residentBytes,
  };
  if (data !== undefined) {
    const text = readFileSync(data, 'utf8');
    const trained = await trainPredictor(
      o.out,
      text.slice(0, Math.max(0, text.length - o.holdoutChars)),
      { rank: o.rank, maxTokens: o.maxTokens },
    );
    result.predictor = {
      path: trained.path,
      tokens: trained.tokens,
      recall: trained.quality.recall,
    };
  }
  return result;
}

export function registerFlash(program: Command, { print, note }: CliIO): void {
  program
    .command('flash')
    .description(
      'write a flash layout (FFN neurons bundled on disk) and optionally train its predictor',
    )
    .requiredOption('--model <dir>', 'a 16-bit or palettized model folder')
    .requiredOption('--out <dir>', 'the layout folder to write')
    .addOption(
      new Option('--dtype <dtype>', 'dtype of the bundled neurons').choices([
        'bf16',
        'fp16',
        'f32',
      ]),
    )
    .option('--train-predictor', 'fit the low-rank sparsity predictor on --data', false)
    .option(
      '--data <file>',
      "text to fit the predictor on (default: the repository's data/tinyshakespeare/input.txt)",
    )
    .option(
      '--holdout-chars <n>',
      'leave out the last N characters of --data',
      int('--holdout-chars'),
      20_000,
    )
    .option('--rank <r>', 'predictor rank per layer', int('--rank'), 32)
    .option('--max-tokens <n>', 'training tokens at most', int('--max-tokens'), 8192)
    .addOption(backendOption())
    .option('--json', 'print the result as JSON', false)
    .action(async (o) => {
      const result = await runFlash({ ...o, log: note });
      if (o.json) print(JSON.stringify(result));
      else
        print(
          `${result.out}: FFN ${(result.ffnBytes / 1e6).toFixed(2)} MB on disk, ${(result.residentBytes / 1e6).toFixed(2)} MB resident${result.predictor ? `; predictor → ${result.predictor.path}` : ''}`,
        );
    });
}
