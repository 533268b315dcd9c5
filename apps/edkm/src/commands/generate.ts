// `edkm generate`: streamed text, optionally with the FFN on disk (runs runGenerate()).
import { type Command, InvalidArgumentError as CommanderArgError, Option } from 'commander';
import { askForTensorCores } from '../backend';
import { runGenerate } from '../generate';
import { type CliIO, SHIPPED_MODEL, backendOption, defaultModel, int, num } from './options';

export function registerGenerate(program: Command, { print, note }: CliIO): void {
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
    .addOption(
      new Option(
        '--prefill <p>',
        "the prompt's products: exact, or w8a8 (int8 weights and activations on the int8 tensor cores; asks Dawn for its unsafe APIs)",
      )
        .choices(['exact', 'w8a8'])
        .default('exact'),
    )
    .addOption(backendOption())
    .option('--json', 'print {prompt_ids, ids, text} instead of streaming', false)
    .action(async (o) => {
      if (o.greedy && o.temperature !== undefined)
        throw new CommanderArgError('--greedy and --temperature exclude each other');
      if (o.prefill === 'w8a8') askForTensorCores(o.backend, '--prefill w8a8', note);
      const result = await runGenerate({
        prefill: o.prefill,
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
}
