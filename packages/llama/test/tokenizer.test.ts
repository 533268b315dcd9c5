import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HFTokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';
import { Tokenizer, defaultModelDir } from '../src/index';

const dir = defaultModelDir();
const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
const corpus = readFileSync(join(dir, '..', '..', 'data', 'tinyshakespeare', 'input.txt'), 'utf8');

/** The plain reference: @huggingface/tokenizers on the whole text. */
const reference = (j: object, text: string, special = false) =>
  new HFTokenizer(j, config).encode(text, { add_special_tokens: special }).ids;

describe('Tokenizer.encode on long texts', () => {
  it('in pieces at line breaks: the same ids as the whole text', () => {
    // texts cut at odd places: a leading line break, spaces after line breaks, blank lines
    for (const [from, to] of [
      [0, 40_000],
      [12_345, 70_000],
      [99_999, 120_001],
    ]) {
      const text = corpus.slice(from, to);
      const tok = new Tokenizer(json, config);
      expect(tok.encode(text, { addSpecialTokens: false })).toEqual(reference(json, text));
    }
    const odd = `\n \n\n  ROMEO:\n${corpus.slice(500, 30_000)}\n\n`;
    expect(new Tokenizer(json, config).encode(odd, { addSpecialTokens: false })).toEqual(
      reference(json, odd),
    );
  });

  it('with special tokens, and when a token holds a line break, the whole text', () => {
    const text = corpus.slice(0, 20_000);
    expect(new Tokenizer(json, config).encode(text)).toEqual(reference(json, text, true));
    // a vocabulary where "\n" can merge: pieces would be wrong, so the text is encoded whole
    const merged = structuredClone(json);
    const vocab = merged.model.vocab as Record<string, number>;
    const id = Object.keys(vocab).length;
    vocab[':\n'] = id;
    merged.model.merges.unshift([':', '\n']);
    const tok = new Tokenizer(merged, config);
    const ids = tok.encode(text, { addSpecialTokens: false });
    expect(ids).toEqual(reference(merged, text));
  });
});
