import { InvalidArgumentError } from './errors';

/** An instruction-following example: Stanford Alpaca's `{instruction, input, output}`. */
export interface AlpacaRow {
  instruction: string;
  /** Context for the instruction; '' (or absent in the file) when there is none. */
  input: string;
  output: string;
}

/** Stanford Alpaca's `PROMPT_DICT["prompt_input"]` (train.py), used when `input` is not ''. */
export const ALPACA_PROMPT_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. ' +
  'Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:';

/** Stanford Alpaca's `PROMPT_DICT["prompt_no_input"]` (train.py), used when `input` is ''. */
export const ALPACA_PROMPT_NO_INPUT =
  'Below is an instruction that describes a task. ' +
  'Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n{instruction}\n\n### Response:';

/**
 * A prompt template: one string for every row, or one for rows with an input and one for rows
 * without (Stanford Alpaca's rule: `input !== ''` picks `input`). Placeholders: `{instruction}`,
 * `{input}`, `{output}`; `{{` and `}}` are literal braces (Python's str.format rules). Without
 * `{output}` the rendered template is the prompt and the response is the output; with it, the
 * text before `{output}` is the prompt and `{output}` plus the rest is the response (learned).
 */
export type AlpacaTemplate = string | { input: string; noInput: string };

export const STANFORD_TEMPLATE: AlpacaTemplate = {
  input: ALPACA_PROMPT_INPUT,
  noInput: ALPACA_PROMPT_NO_INPUT,
};

type Field = keyof AlpacaRow;
const FIELDS: readonly string[] = ['instruction', 'input', 'output'];

/** A template parsed once: literal text and fields, split at `{output}`. */
interface CompiledPart {
  literals: string[]; // literals[k] precedes fields[k]; one more literal than fields
  fields: Field[];
}

export interface CompiledTemplate {
  prompt: CompiledPart;
  /** Text after `{output}` (undefined: the template has no `{output}`). */
  afterOutput?: CompiledPart;
}

function parse(template: string): { literals: string[]; fields: Field[] } {
  const literals: string[] = [];
  const fields: Field[] = [];
  let text = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c === '{' && template[i + 1] === '{') {
      text += '{';
      i++;
    } else if (c === '}' && template[i + 1] === '}') {
      text += '}';
      i++;
    } else if (c === '{') {
      const close = template.indexOf('}', i + 1);
      if (close < 0) throw new InvalidArgumentError(`template: unclosed "{" at ${i}`);
      const name = template.slice(i + 1, close);
      if (!FIELDS.includes(name)) {
        throw new InvalidArgumentError(
          `template: unknown placeholder {${name}} (allowed: {instruction}, {input}, {output}; write {{ and }} for literal braces)`,
        );
      }
      literals.push(text);
      fields.push(name as Field);
      text = '';
      i = close;
    } else if (c === '}') {
      throw new InvalidArgumentError(`template: single "}" at ${i} (write }} for a literal brace)`);
    } else {
      text += c;
    }
  }
  literals.push(text);
  return { literals, fields };
}

/** Parses and checks a template string (unknown placeholders and stray braces are errors). */
export function compileTemplate(template: string): CompiledTemplate {
  const { literals, fields } = parse(template);
  const at = fields.indexOf('output');
  if (at < 0) return { prompt: { literals, fields } };
  if (fields.indexOf('output', at + 1) >= 0)
    throw new InvalidArgumentError('template: {output} may appear only once');
  return {
    prompt: { literals: literals.slice(0, at + 1), fields: fields.slice(0, at) },
    afterOutput: { literals: literals.slice(at + 1), fields: fields.slice(at + 1) },
  };
}

function fill(part: CompiledPart, row: AlpacaRow): string {
  let s = part.literals[0];
  for (let k = 0; k < part.fields.length; k++) s += row[part.fields[k]] + part.literals[k + 1];
  return s;
}

/** The prompt (masked in the labels) and the response (learned) of one row. */
export interface RenderedExample {
  prompt: string;
  response: string;
}

/** A renderer for a template: compiles it once, then maps rows to prompt + response. */
export function templateRenderer(template: AlpacaTemplate = STANFORD_TEMPLATE) {
  const withInput = compileTemplate(typeof template === 'string' ? template : template.input);
  const noInput = typeof template === 'string' ? withInput : compileTemplate(template.noInput);
  return (row: AlpacaRow): RenderedExample => {
    const t = row.input !== '' ? withInput : noInput;
    const prompt = fill(t.prompt, row);
    const response = t.afterOutput ? row.output + fill(t.afterOutput, row) : row.output;
    return { prompt, response };
  };
}

/** Renders one row with a template (default: Stanford Alpaca's two templates). */
export function renderExample(
  row: AlpacaRow,
  template: AlpacaTemplate = STANFORD_TEMPLATE,
): RenderedExample {
  return templateRenderer(template)(row);
}
