import { existsSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { InvalidArgumentError } from '@edkm/core';
import { MODEL_PRESETS, type ModelPreset, defaultModelDir, makeRandomLlama } from '@edkm/llama';
import { type Command, InvalidArgumentError as CommanderArgError, Option } from 'commander';
import { type CliIO, orDefault } from './options';

const positive = (name: string) => (value: string) => {
  const n = Number(value);
  if (!(Number.isSafeInteger(n) && n > 0))
    throw new CommanderArgError(`${name} must be a positive integer`);
  return n;
};

export interface MakeModelCommandOptions {
  preset: ModelPreset;
  out: string;
  layers?: number;
  hidden?: number;
  intermediate?: number;
  heads?: number;
  kvHeads?: number;
  vocab?: number;
  tie?: boolean;
  shardMb?: number;
  seed?: number;
  force?: boolean;
  /** The folder whose tokenizer to copy (default: the repository's models/edkm-tiny). */
  tokenizer?: string;
}

/** `edkm make-model`: a random-weight Hugging Face folder of a real LLaMA's shapes. */
export function runMakeModel(o: MakeModelCommandOptions) {
  const out = resolve(o.out);
  if (existsSync(out) && readdirSync(out).length > 0 && !o.force)
    throw new InvalidArgumentError(`--out ${out} is not empty (pass --force to write into it)`);
  return makeRandomLlama(out, {
    preset: o.preset,
    layers: o.layers,
    hidden: o.hidden,
    intermediate: o.intermediate,
    heads: o.heads,
    kvHeads: o.kvHeads,
    vocab: o.vocab,
    tieEmbeddings: o.tie,
    seed: o.seed,
    maxShardBytes: o.shardMb === undefined ? undefined : o.shardMb * 2 ** 20,
    tokenizerFrom: orDefault(o.tokenizer, '--tokenizer', defaultModelDir),
  });
}

export function registerMakeModel(program: Command, { print }: CliIO): void {
  program
    .command('make-model')
    .description(
      'write a random-weight Hugging Face LLaMA folder of a real model shape (tests, benchmarks)',
    )
    .addOption(
      new Option('--preset <name>', 'the model whose shapes to use')
        .choices(Object.keys(MODEL_PRESETS))
        .makeOptionMandatory(),
    )
    .requiredOption('--out <dir>', 'the folder to write')
    .option('--layers <n>', 'decoder layers (default: the preset’s)', positive('--layers'))
    .option('--hidden <n>', 'hidden size', positive('--hidden'))
    .option('--intermediate <n>', 'MLP intermediate size', positive('--intermediate'))
    .option('--heads <n>', 'attention heads (head_dim = hidden / heads)', positive('--heads'))
    .option('--kv-heads <n>', 'key/value heads (GQA)', positive('--kv-heads'))
    .option('--vocab <n>', 'vocabulary size (at least the tokenizer’s 4096)', positive('--vocab'))
    .option('--tie', 'tie the LM head to the embeddings')
    .option('--shard-mb <n>', 'largest shard in MiB (default 5120)', positive('--shard-mb'))
    .option('--seed <n>', 'random seed', positive('--seed'))
    .option(
      '--tokenizer <dir>',
      "the folder whose tokenizer.json (and tokenizer_config.json) to copy (default: the repository's models/edkm-tiny)",
    )
    .option('--force', 'write into a non-empty --out', false)
    .option('--json', 'print the result as JSON', false)
    .action((o) => {
      const r = runMakeModel(o);
      const summary = {
        out: r.dir,
        preset: o.preset,
        parameters: r.parameters,
        bytes: r.totalBytes,
        files: r.files,
        seconds: r.seconds,
      };
      if (o.json) print(JSON.stringify(summary));
      else
        print(
          `${r.dir}: ${(r.parameters / 1e9).toFixed(3)}B parameters, ${(r.totalBytes / 1e9).toFixed(2)} GB bf16 in ${r.files.length} files, ${r.seconds.toFixed(1)} s`,
        );
    });
}
