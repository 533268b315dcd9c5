import { renderExample } from '@edkm/alpaca';
import { InvalidArgumentError, useBackend } from '@edkm/core';
import { type GenerateOptions, generate } from '@edkm/llama';
import { type LoadedModel, loadModel } from '@edkm/palettized';

export interface GenerateRunOptions extends Omit<GenerateOptions, 'onToken'> {
  model: string;
  prompt: string;
  /** Wrap the prompt in the Stanford Alpaca "no input" template. */
  alpaca: boolean;
  backend: string;
  /** Called with the decoded text of every new token as soon as it is chosen. */
  onText?: (text: string) => void;
}

export interface GenerateResult {
  prompt_ids: number[];
  ids: number[];
  text: string;
}

/** Generates from a 16-bit or palettized model folder (palettized weights dequantized on load). */
export async function runGenerate(
  opts: GenerateRunOptions,
  loaded?: LoadedModel,
): Promise<GenerateResult> {
  if (!opts.prompt) throw new InvalidArgumentError('--prompt is empty');
  await useBackend(opts.backend);
  const { model, tokenizer } = loaded ?? loadModel(opts.model);
  try {
    const text = opts.alpaca
      ? renderExample({ instruction: opts.prompt, input: '', output: '' }).prompt
      : opts.prompt;
    const promptIds = tokenizer.encode(text);
    const ids: number[] = [];
    let shown = '';
    const { model: _m, prompt: _p, alpaca: _a, backend: _b, onText, ...sampling } = opts;
    await generate(model, promptIds, {
      ...sampling,
      onToken: (id) => {
        ids.push(id);
        if (!onText) return;
        // decode the whole continuation so far: byte-fallback tokens only make text together
        const now = tokenizer.decode(ids);
        if (now.length > shown.length && !now.endsWith('\uFFFD')) {
          onText(now.slice(shown.length));
          shown = now;
        }
      },
    });
    const all = tokenizer.decode(ids);
    if (onText && all.length > shown.length) onText(all.slice(shown.length));
    return { prompt_ids: promptIds, ids, text: all };
  } finally {
    if (!loaded) model.dispose();
  }
}
