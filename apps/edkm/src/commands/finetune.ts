// `edkm finetune`: fine-tune while palettizing (runs finetune()).
import { defaultAlpacaPath } from '@edkm/alpaca';
import { type Command, Option } from 'commander';
import { askForTensorCores } from '../backend';
import {
  type FinetuneOptions,
  defaultPalettizeConfig,
  finetune,
  readPalettizeConfig,
} from '../finetune';
import { parseBytes } from '../memory-plan';
import { progressBar } from '../progress';
import {
  type CliIO,
  SHIPPED_MODEL,
  backendOption,
  defaultModel,
  int,
  num,
  orDefault,
} from './options';

export function registerFinetune(program: Command, { print, note }: CliIO): void {
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
      'index bits of every palettized layer (without --config); 16: no palettization (16-bit fine-tune)',
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
    .option(
      '--no-step-graph',
      'run every step op by op instead of replaying the recorded step (webgpu)',
    )
    .addOption(
      new Option(
        '--matmul-precision <p>',
        "training's float32 products on webgpu: f32, or split (int8 tensor cores, ~16-bit mantissas; asks Dawn for its unsafe APIs)",
      )
        .choices(['f32', 'split'])
        .default('f32'),
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
      if (o.matmulPrecision === 'split')
        askForTensorCores(o.backend, '--matmul-precision split', note);
      const result = await finetune(options, {
        matmulPrecision: o.matmulPrecision,
        deviceMemory: o.deviceMemory === undefined ? undefined : parseBytes(o.deviceMemory),
        exportTo: o.export,
        stepGraph: o.stepGraph,
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
}
