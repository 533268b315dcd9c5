// Builds the task sets shipped in data/eval/ from the real text in data/ (deterministic, seeded):
//   shakespeare-val.txt        perplexity text: the end of tinyshakespeare (~20,000 characters,
//                              from the first speech boundary on)
//   shakespeare-next-line.jsonl 200 rows "which line comes next": 4 lines of that text, the true
//                              next verse line vs 3 other verse lines of it (none from the
//                              context), separated by "\n" (target_delimiter)
//   alpaca-mc.jsonl            Alpaca seed tasks (output ≤ 400 characters): the instruction in
//                              Alpaca's prompt template, the true output vs 3 other tasks' outputs
// Usage (repo root): pnpm exec tsx packages/eval/scripts/make-sets.ts
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { seededRandom } from '@edkm/core';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
export const SEED = 20240611;
const VAL_CHARS = 20_000;
const NEXT_LINE_ROWS = 200;
const CONTEXT_LINES = 4;
const CHOICES = 4;
const ALPACA_MAX_OUTPUT = 400;

function shuffle<T>(xs: T[], r: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/**
 * `CHOICES - 1` distinct distractors from `pool` (not the answer, nor anything in `exclude`), with
 * the answer at a random place.
 */
function choicesFor(answer: string, pool: string[], r: () => number, exclude: string[] = []) {
  const others = new Set<string>();
  while (others.size < CHOICES - 1) {
    const c = pool[Math.floor(r() * pool.length)];
    if (c !== answer && !exclude.includes(c)) others.add(c);
  }
  const gold = Math.floor(r() * CHOICES);
  const choices = [...others];
  choices.splice(gold, 0, answer);
  return { choices, gold };
}

const jsonl = (rows: object[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
const SPEAKER = /^[A-Z][A-Za-z' ,.-]*:$/;

export interface AlpacaRow {
  instruction: string;
  input: string;
  output: string;
}

/** Stanford Alpaca's prompt template (train.py PROMPT_DICT), without the output. */
export function alpacaPrompt({ instruction, input }: AlpacaRow): string {
  return input
    ? `Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n${instruction}\n\n### Input:\n${input}\n\n### Response:`
    : `Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n${instruction}\n\n### Response:`;
}

export function buildSets(shakespeare: string, alpaca: AlpacaRow[]): Record<string, string> {
  const start = shakespeare.indexOf('\n\n', shakespeare.length - VAL_CHARS) + 2;
  const val = shakespeare.slice(start);

  const lines = val.replace(/\n$/, '').split('\n');
  const isVerse = (l: string) => l.trim() !== '' && !SPEAKER.test(l);
  const verse = [...new Set(lines.filter(isVerse))];
  const r1 = seededRandom(SEED);
  const targets = shuffle(
    lines.map((_, i) => i).filter((i) => i >= CONTEXT_LINES && isVerse(lines[i])),
    r1,
  )
    .slice(0, NEXT_LINE_ROWS)
    .sort((a, b) => a - b);
  const nextLine = targets.map((i) => {
    const context = lines.slice(i - CONTEXT_LINES, i);
    return {
      context: context.join('\n').replace(/^\n+/, ''),
      ...choicesFor(lines[i], verse, r1, context),
      target_delimiter: '\n',
    };
  });

  const r2 = seededRandom(SEED + 1);
  const tasks = alpaca.filter((t) => t.output.length <= ALPACA_MAX_OUTPUT);
  const outputs = [...new Set(tasks.map((t) => t.output))];
  const alpacaMc = tasks.map((t) => ({
    context: alpacaPrompt(t),
    ...choicesFor(t.output, outputs, r2),
  }));

  return {
    'shakespeare-val.txt': val,
    'shakespeare-next-line.jsonl': jsonl(nextLine),
    'alpaca-mc.jsonl': jsonl(alpacaMc),
  };
}

export function readSources(): [string, AlpacaRow[]] {
  return [
    readFileSync(join(ROOT, 'data/tinyshakespeare/input.txt'), 'utf8'),
    JSON.parse(readFileSync(join(ROOT, 'data/alpaca/alpaca_seed.json'), 'utf8')),
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = join(ROOT, 'data/eval');
  mkdirSync(out, { recursive: true });
  for (const [name, text] of Object.entries(buildSets(...readSources()))) {
    writeFileSync(join(out, name), text);
    console.log(`${name}: ${text.length} characters, ${text.split('\n').length - 1} lines`);
  }
}
