#!/usr/bin/env node
// The edkm command: finetune · export · eval · generate · inspect · demo.
import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import '@edkm/backend-webgpu';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { defaultAlpacaPath } from '@edkm/alpaca';
import { EdkmError, IOError, InvalidArgumentError } from '@edkm/core';
import { formatTable } from '@edkm/eval';
import { trainPredictor, writeFlashLayout } from '@edkm/flash';
import { defaultModelDir } from '@edkm/llama';
import { formatInspection, formatSizeReport, inspect } from '@edkm/palettized';
import { Command, InvalidArgumentError as CommanderArgError, Option } from 'commander';
import { requireModelFolder, startBackend } from './backend';
import { registerMakeModel } from './commands/make-model';
import { runDemo } from './demo';
import { runEval } from './evaluate';
import { exportModel } from './export';
import {
  type FinetuneOptions,
  defaultPalettizeConfig,
  finetune,
  readPalettizeConfig,
} from './finetune';
import { runGenerate } from './generate';
import { parseBytes } from './memory-plan';
import { progressBar } from './progress';

const int = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new CommanderArgError(`${name} must be an integer`);
  return n;
};
const num = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new CommanderArgError(`${name} must be a number`);
  return n;
};
const backendOption = () =>
  new Option('--backend <name>', 'compute backend')
    .choices(['auto', 'webgpu', 'wasm', 'cpu'])
    .default('auto');
const print = (s: string) => process.stdout.write(`${s}\n`);
const note = (s: string) => process.stderr.write(`${s}\n`);

/**
 * A flag's default that lives in this repository (the shipped model, the Alpaca seed tasks), looked
 * up only when the flag is absent: an installed or bundled `edkm` has no repository around it, and
 * the error then names the flag to pass.
 */
function orDefault(value: string | undefined, flag: string, find: () => string): string {
  if (value !== undefined) return value;
  try {
    return find();
  } catch (err) {
    if (!(err instanceof IOError)) throw err;
    throw new InvalidArgumentError(
      `pass ${flag}: its default is found only inside the edkm repository (${err.message})`,
      { cause: err },
    );
  }
}
const defaultModel = (o: { model?: string }) => orDefault(o.model, '--model', defaultModelDir);
const SHIPPED_MODEL = "default: the repository's models/edkm-tiny";

export function buildCli(): Command {
  const program = new Command('edkm')
    .description('Train-time weight clustering (eDKM palettization) of LLaMA models')
    .showHelpAfterError()
    .configureOutput({ outputError: (s, write) => write(`edkm: ${s}`) });

  program
    .command('finetune')
    .description('fine-tune a model while palettizing its linear layers (DKM / eDKM / JLCM)')
    .option('--model <dir>', `Hugging Face model folder (${SHIPPED_MODEL})`)
    .option(
      '--data <file>',
      "Alpaca .json/.jsonl, or a .txt file of plain text (default: the repository's data/alpaca/alpaca_seed.json)",
    )
    .requiredOption('--out <dir>', 'run folder: run.json, checkpoint, log.jsonl, loss.svg')
    .option(
      '--bits <n>',
      'index bits of every palettized layer (without --config)',
      int('--bits'),
      3,
    )
    .option('--config <file>', 'per-layer palettizer config (JSON, coremltools style)')
    .option('--steps <n>', 'optimizer steps', int('--steps'), 100)
    .option('--batch <n>', 'sequences per micro-batch', int('--batch'), 8)
    .option('--seq <n>', 'tokens per sequence (text windows; Alpaca max length)', int('--seq'), 128)
    .option('--grad-accum <n>', 'micro-batches per optimizer step', int('--grad-accum'), 1)
    .option('--lr <x>', 'peak learning rate', num('--lr'), 1e-4)
    .option('--warmup <n>', 'linear warm-up steps', int('--warmup'), 10)
    .option(
      '--min-lr-ratio <x>',
      'cosine decay floor, as a fraction of --lr',
      num('--min-lr-ratio'),
      0.1,
    )
    .option('--weight-decay <x>', 'AdamW decoupled weight decay', num('--weight-decay'), 0)
    .option('--clip <x>', 'clip the global gradient norm (0 = off)', num('--clip'), 1)
    .option('--seed <n>', 'data order and initialisation seed', int('--seed'), 0)
    .option(
      '--save-every <n>',
      'checkpoint every N steps (and at the end); 0: none',
      int('--save-every'),
      50,
    )
    .option(
      '--read-every <n>',
      'read the loss back every N steps (the progress bar and log lag by up to N)',
      int('--read-every'),
      10,
    )
    .option(
      '--holdout-chars <n>',
      'text data: leave out the last N characters',
      int('--holdout-chars'),
      0,
    )
    .option('--packing', 'Alpaca data: pack several examples per sequence', false)
    .option('--train-embeddings', 'also train the token embeddings', false)
    .option('--marshal', 'eDKM: keep saved index lists in host memory (@edkm/marshal)', false)
    .option('--shards <n>', 'eDKM: split each index list into n shards', int('--shards'))
    .option('--index-lists', 'eDKM: index lists instead of 16-bit code tables', false)
    .option(
      '--export <dir>',
      'at the end, write the palettized export here from memory (with --save-every 0: no checkpoint)',
    )
    .option(
      '--checkpointing',
      'gradient checkpointing per decoder layer, each layer updated and its gradients freed during the backward pass (large models)',
      false,
    )
    .option(
      '--device-memory <bytes>',
      'device memory to plan against, e.g. 139GiB (default: host memory on cpu; unchecked on webgpu)',
    )
    .addOption(backendOption())
    .option('--resume', 'continue the run in --out from its checkpoint', false)
    .option('--json', 'print the result as JSON', false)
    .action(async (o) => {
      const palettize = o.config ? readPalettizeConfig(o.config) : defaultPalettizeConfig(o.bits);
      const options: FinetuneOptions = {
        model: defaultModel(o),
        data: orDefault(o.data, '--data', () => defaultAlpacaPath()),
        out: o.out,
        palettize,
        steps: o.steps,
        batch: o.batch,
        seq: o.seq,
        gradAccum: o.gradAccum,
        lr: o.lr,
        warmup: o.warmup,
        minLrRatio: o.minLrRatio,
        weightDecay: o.weightDecay,
        clip: o.clip,
        seed: o.seed,
        saveEvery: o.saveEvery,
        holdoutChars: o.holdoutChars,
        packing: o.packing,
        trainEmbeddings: o.trainEmbeddings,
        marshal: o.marshal,
        shards: o.shards,
        indexLists: o.indexLists,
        readEvery: o.readEvery,
        checkpointing: o.checkpointing || undefined,
      };
      const result = await finetune(options, {
        deviceMemory: o.deviceMemory === undefined ? undefined : parseBytes(o.deviceMemory),
        exportTo: o.export,
        backend: o.backend,
        resume: o.resume,
        progress: progressBar(),
        log: note,
      });
      if (o.json) print(JSON.stringify(result));
      else
        note(
          `done: ${result.steps} steps, ${result.tokens.toLocaleString('en-US')} tokens in ${result.seconds.toFixed(1)} s (${result.tokensPerSecond.toFixed(0)} tokens/s), final loss ${result.finalLoss.toFixed(4)}, peak backend memory ${(result.peakBytes / 2 ** 20).toFixed(0)} MiB → ${result.runDir}`,
        );
    });

  program
    .command('export')
    .description('write the palettized model: fp16 LUTs + packed n-bit indices in safetensors')
    .requiredOption(
      '--model <dir>',
      'a fine-tuning run folder, or a 16-bit model for post-training --method',
    )
    .requiredOption('--out <dir>', 'the palettized model folder to write')
    .addOption(
      new Option(
        '--method <m>',
        "auto: the run's clustering; kmeans / rtn: post-training baselines",
      )
        .choices(['auto', 'kmeans', 'rtn'])
        .default('auto'),
    )
    .option('--bits <n>', 'post-training bits (without --config)', int('--bits'), 3)
    .option('--config <file>', 'post-training per-layer config (JSON)')
    .addOption(
      new Option('--dense-dtype <dtype>', 'dtype of the weights that stay dense')
        .choices(['bf16', 'fp16', 'f32'])
        .default('bf16'),
    )
    .addOption(
      new Option(
        '--format <f>',
        'edkm: palettized folder (LUTs + packed indices); hf: hard-assigned weights as a standard Hugging Face folder',
      )
        .choices(['edkm', 'hf'])
        .default('edkm'),
    )
    .addOption(
      new Option('--hf-dtype <dtype>', 'with --format hf: the weights’ dtype')
        .choices(['bf16', 'fp16', 'f32'])
        .default('bf16'),
    )
    .option(
      '--shard-mb <n>',
      'with --format hf: largest shard in MiB (default 5120)',
      int('--shard-mb'),
    )
    .addOption(backendOption())
    .option('--json', 'print the size report as JSON', false)
    .action(async (o) => {
      const result = await exportModel({
        format: o.format,
        hfDtype: o.hfDtype,
        maxShardBytes: o.shardMb === undefined ? undefined : o.shardMb * 2 ** 20,
        model: o.model,
        out: o.out,
        method: o.method,
        bits: o.bits,
        palettize: o.config ? readPalettizeConfig(o.config) : undefined,
        denseDtype: o.denseDtype,
        backend: o.backend,
        log: note,
      });
      if (o.json) print(JSON.stringify(result));
      else if (result.hf)
        print(
          `${result.out} (${result.method}, Hugging Face folder): ${(result.hf.totalBytes / 1e6).toFixed(1)} MB in ${result.hf.files.length} files`,
        );
      else print(`${result.out} (${result.method})\n${formatSizeReport(result.report!)}`);
    });

  program
    .command('eval')
    .description('evaluate a 16-bit or palettized model: multiple-choice tasks or perplexity')
    .option('--model <dir>', `model folder, 16-bit or palettized (${SHIPPED_MODEL})`)
    .addOption(
      new Option('--task <name>', 'task')
        .choices([
          'piqa',
          'winogrande',
          'arc_easy',
          'arc_challenge',
          'hellaswag',
          'boolq',
          'multiple_choice',
          'ppl',
        ])
        .makeOptionMandatory(),
    )
    .requiredOption('--data <path>', 'task file (JSONL; a text file for ppl)')
    .option('--limit <n>', 'first N documents', int('--limit'))
    .option('--batch <n>', 'sequences per forward pass', int('--batch'), 8)
    .option('--window <n>', 'ppl: window tokens', int('--window'), 256)
    .option('--stride <n>', 'ppl: stride tokens', int('--stride'), 128)
    .addOption(backendOption())
    .option('--json', 'print the result as one JSON object', false)
    .action(async (o) => {
      const result = await runEval({
        model: defaultModel(o),
        task: o.task,
        data: o.data,
        limit: o.limit,
        batch: o.batch,
        window: o.window,
        stride: o.stride,
        backend: o.backend,
        progress: !o.json && process.stderr.isTTY,
        log: note,
      });
      if (o.json) print(JSON.stringify(result));
      else print(formatTable([result]));
    });

  program
    .command('generate')
    .description('generate text (streamed) from a 16-bit or palettized model')
    .option('--model <dir>', `model folder, 16-bit or palettized (${SHIPPED_MODEL})`)
    .requiredOption('--prompt <text>', 'the prompt')
    .option('--alpaca', 'wrap the prompt in the Alpaca instruction template', false)
    .option('--max-new-tokens <n>', 'tokens to generate at most', int('--max-new-tokens'), 64)
    .option('--greedy', 'always the most likely token (the default without --temperature)')
    .option('--temperature <t>', 'sampling temperature', num('--temperature'))
    .option('--top-k <k>', 'sample among the k most likely tokens', int('--top-k'))
    .option('--top-p <p>', 'nucleus sampling mass', num('--top-p'))
    .option(
      '--repetition-penalty <r>',
      'Hugging Face repetition penalty (> 1)',
      num('--repetition-penalty'),
    )
    .option('--seed <n>', 'sampling seed', int('--seed'), 0)
    .option(
      '--flash',
      'keep the FFN on disk and read the neurons each token needs (LLM in a flash)',
      false,
    )
    .option(
      '--memory-budget <b>',
      'with --flash: memory for FFN neurons, "50%" of the FFN or bytes',
      '50%',
    )
    .addOption(
      new Option(
        '--predictor <p>',
        "with --flash: 'all' neurons (exact) or the layout's 'low-rank' predictor",
      )
        .choices(['all', 'low-rank'])
        .default('all'),
    )
    .option(
      '--neurons <f>',
      "with --predictor low-rank: fraction of each layer's neurons per token",
      num('--neurons'),
      0.25,
    )
    .option('--window <k>', 'with --flash: tokens whose neurons stay in memory', int('--window'), 4)
    .addOption(backendOption())
    .option('--json', 'print {prompt_ids, ids, text} instead of streaming', false)
    .action(async (o) => {
      if (o.greedy && o.temperature !== undefined)
        throw new CommanderArgError('--greedy and --temperature exclude each other');
      const result = await runGenerate({
        model: defaultModel(o),
        prompt: o.prompt,
        alpaca: o.alpaca,
        backend: o.backend,
        log: note,
        maxNewTokens: o.maxNewTokens,
        greedy: o.greedy,
        temperature: o.temperature,
        topK: o.topK,
        topP: o.topP,
        repetitionPenalty: o.repetitionPenalty,
        seed: o.seed,
        onText: o.json ? undefined : (t) => process.stdout.write(t),
        flash: o.flash
          ? {
              memoryBudget: o.memoryBudget,
              predictor: o.predictor,
              neurons: o.neurons,
              window: o.window,
              onLayout: (dir) =>
                note(
                  `(wrote a temporary flash layout to ${dir}; make one to keep with: edkm flash)`,
                ),
            }
          : undefined,
      });
      if (o.json) print(JSON.stringify(result));
      else process.stdout.write('\n');
      if (result.flash && !o.json) {
        const f = result.flash;
        note(
          `flash: ${f.tokensPerSecond.toFixed(1)} tokens/s, ${(f.bytesReadPerToken / 1e6).toFixed(2)} MB and ${f.readsPerToken.toFixed(1)} reads per token, cache hit rate ${(100 * f.hitRate).toFixed(0)}%, ${(100 * f.memory.fractionOfModel).toFixed(0)}% of the model in memory`,
        );
      }
    });

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
      requireModelFolder(o.model);
      const data = o.trainPredictor
        ? orDefault(o.data, '--data', () =>
            join(dirname(defaultModelDir()), '..', 'data', 'tinyshakespeare', 'input.txt'),
          )
        : undefined;
      if (data !== undefined && !existsSync(data))
        throw new CommanderArgError(`--data ${data} does not exist`);
      await startBackend(o.backend, note);
      const layout = writeFlashLayout(o.model, o.out, { dtype: o.dtype });
      const result: Record<string, unknown> = {
        out: layout.dir,
        ffnBytes: layout.ffnBytes,
        residentBytes: layout.residentBytes,
      };
      if (data !== undefined) {
        const text = readFileSync(data, 'utf8');
        const trained = await trainPredictor(
          o.out,
          text.slice(0, Math.max(0, text.length - o.holdoutChars)),
          {
            rank: o.rank,
            maxTokens: o.maxTokens,
          },
        );
        result.predictor = {
          path: trained.path,
          tokens: trained.tokens,
          recall: trained.quality.recall,
        };
      }
      if (o.json) print(JSON.stringify(result));
      else
        print(
          `${layout.dir}: FFN ${(layout.ffnBytes / 1e6).toFixed(2)} MB on disk, ${(layout.residentBytes / 1e6).toFixed(2)} MB resident${result.predictor ? `; predictor → ${(result.predictor as { path: string }).path}` : ''}`,
        );
    });

  registerMakeModel(program, print);

  program
    .command('inspect')
    .description('what a model folder, export or checkpoint holds')
    .argument('<path>', 'a folder or a .safetensors file')
    .option('--json', 'print as JSON', false)
    .action((path: string, o) => {
      const info = inspect(path);
      print(o.json ? JSON.stringify(info) : formatInspection(info));
    });

  program
    .command('demo')
    .description(
      'the whole pipeline on the shipped model: baselines, eDKM fine-tuning, export, eval, generate',
    )
    .addOption(
      new Option(
        '--recipe <name>',
        "cpu: minutes on 2 cores; gpu: the PyTorch reference's 400 steps of 32×256 (default: gpu on a hardware GPU, else cpu)",
      ).choices(['cpu', 'gpu']),
    )
    .option('--steps <n>', 'fine-tuning steps (cpu recipe 24, gpu 400)', int('--steps'))
    .option('--batch <n>', 'sequences per step (4 / 32)', int('--batch'))
    .option('--seq <n>', 'tokens per sequence (64 / 256)', int('--seq'))
    .option('--bits <n>', 'index bits', int('--bits'), 3)
    .option('--lr <x>', 'peak learning rate (5e-4 / 1e-4)', num('--lr'))
    .option(
      '--ppl-chars <n>',
      'characters of held-out text for perplexity (2,000 / 20,000)',
      int('--ppl-chars'),
    )
    .option('--mc <n>', 'next-line multiple-choice items (24 / 100)', int('--mc'))
    .option('--out <dir>', 'where to write runs and exports', 'runs/demo')
    .addOption(backendOption())
    .action(async (o) => {
      await runDemo({
        steps: o.steps,
        batch: o.batch,
        seq: o.seq,
        bits: o.bits,
        lr: o.lr,
        pplChars: o.pplChars,
        mc: o.mc,
        out: o.out,
        backend: o.backend,
        recipe: o.recipe,
      });
    });

  return program;
}

/** Runs the CLI; a user error prints one clear line and exits non-zero. */
export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (err) {
    if (err instanceof EdkmError) {
      process.stderr.write(`edkm: error: ${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    if (err instanceof CommanderArgError) {
      process.stderr.write(`edkm: error: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
}
