import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildSets, readSources } from '../scripts/make-sets';
import { loadTask } from '../src/index';

const DATA = join(__dirname, '../../../data/eval');

describe('shipped task sets (data/eval)', () => {
  const built = buildSets(...readSources());
  it.each(Object.keys(built))('%s is what scripts/make-sets.ts builds', (name) => {
    expect(readFileSync(join(DATA, name), 'utf8')).toBe(built[name]);
  });
  it('multiple-choice sets load, with the true answer among distinct choices', () => {
    const lines = loadTask('multiple_choice', join(DATA, 'shakespeare-next-line.jsonl'));
    expect(lines).toHaveLength(200);
    expect(lines[0].requests[0].continuation.startsWith('\n')).toBe(true);
    const alpaca = loadTask('multiple_choice', join(DATA, 'alpaca-mc.jsonl'));
    expect(alpaca.length).toBeGreaterThan(100);
    for (const d of [...lines, ...alpaca]) {
      expect(d.requests).toHaveLength(4);
      expect(new Set(d.requests.map((r) => r.continuation)).size).toBe(4);
    }
    const text = built['shakespeare-val.txt'];
    expect(text.length).toBeGreaterThan(19_000);
    expect(text.startsWith('ARIEL:\n') || /^[A-Z]/.test(text)).toBe(true);
  });
});
