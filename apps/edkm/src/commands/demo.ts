// `edkm demo`: the whole pipeline on the shipped model (runs runDemo()).
import { type Command, Option } from 'commander';
import { runDemo } from '../demo';
import { type CliIO, backendOption, int, num } from './options';

export function registerDemo(program: Command, _io: CliIO): void {
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
    .option(
      '--ft-baseline',
      'also fine-tune at 16 bits and k-means that (another training run; on in the gpu recipe)',
    )
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
        ftBaseline: o.ftBaseline,
        out: o.out,
        backend: o.backend,
        recipe: o.recipe,
      });
    });
}
