// `edkm export`: the palettized export, or a post-training baseline (runs exportModel()).
import { formatSizeReport } from '@edkm/palettized';
import { type Command, Option } from 'commander';
import { exportModel } from '../export';
import { readPalettizeConfig } from '../finetune';
import { type CliIO, backendOption, int } from './options';

export function registerExport(program: Command, { print, note }: CliIO): void {
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
        "auto: the run's clustering; kmeans / rtn: post-training baselines (of a 16-bit model or of a run's fine-tuned weights)",
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
}
