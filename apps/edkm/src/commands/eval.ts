// `edkm eval`: a task or perplexity (runs runEval()).
import { formatTable } from '@edkm/eval';
import { type Command, Option } from 'commander';
import { runEval } from '../evaluate';
import { type CliIO, SHIPPED_MODEL, backendOption, defaultModel, int } from './options';

export function registerEval(program: Command, { print, note }: CliIO): void {
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
    .addOption(
      new Option(
        '--engine <name>',
        'what computes the logits: the dense model, the inference decoder (stored weights), or the decoder with W8A8 palettized products',
      )
        .choices(['model', 'decoder', 'w8a8'])
        .default('model'),
    )
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
        engine: o.engine,
        progress: !o.json && process.stderr.isTTY,
        log: note,
      });
      if (o.json) print(JSON.stringify(result));
      else print(formatTable([result]));
    });
}
