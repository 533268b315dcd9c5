import { describe, expect, it } from 'vitest';
import {
  ALPACA_PROMPT_INPUT,
  ALPACA_PROMPT_NO_INPUT,
  InvalidArgumentError,
  compileTemplate,
  renderExample,
} from '../src/index';

// stanford_alpaca/train.py, PROMPT_DICT, verbatim
const PROMPT_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:';
const PROMPT_NO_INPUT =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:';

describe('Stanford Alpaca templates', () => {
  it('are the strings of train.py', () => {
    expect(ALPACA_PROMPT_INPUT).toBe(PROMPT_INPUT);
    expect(ALPACA_PROMPT_NO_INPUT).toBe(PROMPT_NO_INPUT);
  });

  it('render the "with input" variant when input is not empty', () => {
    const r = renderExample({
      instruction: 'Translate.',
      input: 'Good morning',
      output: 'Bonjour',
    });
    expect(r.prompt).toBe(
      'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nTranslate.\n\n### Input:\nGood morning\n\n### Response:',
    );
    expect(r.response).toBe('Bonjour');
  });

  it('render the "no input" variant when input is empty, and "with input" for whitespace (input != "")', () => {
    const r = renderExample({ instruction: 'Give a tip.', input: '', output: 'Sleep.' });
    expect(r.prompt).toBe(
      'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nGive a tip.\n\n### Response:',
    );
    expect(r.response).toBe('Sleep.');
    expect(renderExample({ instruction: 'x', input: ' ', output: 'y' }).prompt).toContain(
      '### Input:\n \n\n',
    );
  });

  it('insert values literally (braces in values are not placeholders)', () => {
    const r = renderExample({ instruction: '{input} {{x}}', input: '{output}', output: '}{' });
    expect(r.prompt).toContain('### Instruction:\n{input} {{x}}\n\n### Input:\n{output}\n\n');
    expect(r.response).toBe('}{');
  });
});

describe('user templates', () => {
  const row = { instruction: 'Add.', input: '1+1', output: '2' };

  it('without {output}: the whole template is the prompt, the output the response', () => {
    expect(renderExample(row, 'Q: {instruction} {input}\nA:')).toEqual({
      prompt: 'Q: Add. 1+1\nA:',
      response: '2',
    });
  });

  it('with {output}: the text before it is the prompt, {output} and what follows the response', () => {
    expect(renderExample(row, '<{instruction}|{input}> {output}\n---\n')).toEqual({
      prompt: '<Add.|1+1> ',
      response: '2\n---\n',
    });
  });

  it('{{ and }} are literal braces', () => {
    expect(renderExample(row, '{{{instruction}}} -> ')).toEqual({
      prompt: '{Add.} -> ',
      response: '2',
    });
  });

  it('pick per row with {input, noInput}', () => {
    const t = { input: 'I:{instruction}+{input}', noInput: 'N:{instruction}' };
    expect(renderExample(row, t).prompt).toBe('I:Add.+1+1');
    expect(renderExample({ ...row, input: '' }, t).prompt).toBe('N:Add.');
  });

  it('reject unknown placeholders, stray braces and a repeated {output}', () => {
    expect(() => compileTemplate('{instruction} {context}')).toThrow(InvalidArgumentError);
    expect(() => compileTemplate('{instruction} {context}')).toThrow(
      /unknown placeholder \{context\}/,
    );
    expect(() => compileTemplate('{instruction')).toThrow(/unclosed/);
    expect(() => compileTemplate('a } b')).toThrow(/single "}"/);
    expect(() => compileTemplate('{output}{output}')).toThrow(/only once/);
  });
});
