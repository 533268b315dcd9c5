import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer, defaultModelDir } from '@edkm/llama';
import type { AlpacaRow } from '../src/index';

export const fixture = (name: string) =>
  fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

/** The shipped model's tokenizer (BOS 1, EOS 2, no pad token), loaded once per test file. */
export function loadTokenizer(): Tokenizer {
  const dir = defaultModelDir();
  const json = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8'));
  return new Tokenizer(json('tokenizer.json'), json('tokenizer_config.json'));
}

export const readJson = (path: string): AlpacaRow[] => JSON.parse(readFileSync(path, 'utf8'));

/** Collects an async iterable. */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
