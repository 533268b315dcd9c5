import '@edkm/backend-cpu';
import { join } from 'node:path';
import { InvalidArgumentError, tf, useBackend } from '@edkm/core';
import { type KVCache, type LlamaModel, type Tokenizer, generate, loadLlama } from '@edkm/llama';
import { loadModel } from '@edkm/palettized';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FlashOptions, budgetBytes, openFlash, writeFlashLayout } from '../src/index';
import { modelDir, tempDir, writePalettizedTiny } from './helpers';

const work = tempDir('engine');
const bundled = join(work, 'bundled');
const matrix = join(work, 'matrix');
let model: LlamaModel;
let tokenizer: Tokenizer;
let prompt: number[];
let reference: number[];
let referenceLogits: Float32Array;
const NEW_TOKENS = 10;

beforeAll(async () => {
  await useBackend('cpu');
  writeFlashLayout(modelDir, bundled);
  writeFlashLayout(modelDir, matrix, { bundling: 'matrix' });
  ({ model, tokenizer } = loadLlama(modelDir));
  prompt = tokenizer.encode('ROMEO:\nWhat light through yonder');
  reference = await generate(model, prompt, { maxNewTokens: NEW_TOKENS, eosIds: [] });
  const logits = model.forward([prompt]);
  referenceLogits = logits.dataSync() as Float32Array;
  logits.dispose();
});

afterAll(() => model.dispose());

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('exact selection equals full-memory inference', () => {
  const cases: [string, string, FlashOptions][] = [
    ['all, 100%', bundled, { memoryBudget: '100%' }],
    ['all, 50%', bundled, { memoryBudget: '50%', window: 2 }],
    ['all, 25%, merged reads', bundled, { memoryBudget: '25%', mergeGapBytes: 4096 }],
    ['exact oracle, 50%', bundled, { memoryBudget: '50%', predictor: { kind: 'oracle' } }],
    ['all, 25%, unbundled matrices', matrix, { memoryBudget: '25%' }],
    ['naive, 50%', bundled, { memoryBudget: '50%', strategy: 'naive' }],
  ];
  for (const [name, dir, opts] of cases)
    it(name, async () => {
      const flash = await openFlash(dir, opts);
      try {
        const logits = await flash.forward(prompt);
        expect(maxAbsDiff(logits.dataSync() as Float32Array, referenceLogits)).toBeLessThan(1e-4);
        logits.dispose();
        const ids = await flash.generate(prompt, { maxNewTokens: NEW_TOKENS, eosIds: [] });
        expect(ids).toEqual(reference);
        const s = flash.stats();
        expect(s.tokens).toBe(2 * prompt.length + NEW_TOKENS - 1);
        expect(s.memory.neuronMemoryBytes).toBeLessThanOrEqual(s.memory.budgetBytes);
        if (opts.memoryBudget === '100%') {
          // everything was read once, then every neuron was a hit
          expect(s.bytesRead).toBe(s.memory.ffnBytes);
          expect(s.reads).toBe(6);
        } else {
          expect(s.bytesRead).toBeGreaterThan(s.memory.ffnBytes);
          expect(s.ioWaitSeconds).toBeGreaterThanOrEqual(0);
        }
      } finally {
        await flash.close();
      }
    });

  it('a palettized export through a flash layout equals the dequantized model', async () => {
    const pal = writePalettizedTiny(join(work, 'pal'));
    const dir = join(work, 'pal-flash');
    writeFlashLayout(pal, dir);
    const { model: palModel } = loadModel(pal);
    const expected = await generate(palModel, prompt, { maxNewTokens: 6, eosIds: [] });
    const flash = await openFlash(dir, { memoryBudget: '50%' });
    expect(await flash.generate(prompt, { maxNewTokens: 6, eosIds: [] })).toEqual(expected);
    await flash.close();
    palModel.dispose();
  });
});

describe('sparse selection', () => {
  it('a prompt in one pass equals token by token (per-token top-k masks)', async () => {
    const flash = await openFlash(bundled, {
      predictor: { kind: 'oracle', topK: 0.25 },
      memoryBudget: '50%',
    });
    const whole = await flash.forward(prompt);
    const cache: KVCache = { keys: [], values: [], length: 0 };
    const rows: Float32Array[] = [];
    for (const id of prompt) {
      const l = await flash.forward([id], cache);
      rows.push(l.dataSync() as Float32Array);
      l.dispose();
    }
    const V = model.config.vocabSize;
    const all = whole.dataSync() as Float32Array;
    rows.forEach((r, t) =>
      expect(maxAbsDiff(r, all.subarray(t * V, (t + 1) * V))).toBeLessThan(1e-4),
    );
    // it differs from the dense model: top-25% is not exact
    expect(maxAbsDiff(all, referenceLogits)).toBeGreaterThan(1e-3);
    tf.dispose([whole, ...cache.keys, ...cache.values]);
    const s = flash.stats();
    expect(s.neuronsUsed).toBeLessThan(s.tokens * 6 * 768);
    await flash.close();
  });

  it('windowing reads less per token than loading every neuron', async () => {
    const opts: FlashOptions = {
      memoryBudget: '50%',
      predictor: { kind: 'oracle', topK: 0.1 },
      window: 3,
    };
    const flash = await openFlash(bundled, opts);
    await flash.generate(prompt, { maxNewTokens: 8, eosIds: [] });
    const sparse = flash.stats();
    await flash.close();
    const naive = await openFlash(bundled, { memoryBudget: '50%', strategy: 'naive' });
    await naive.generate(prompt, { maxNewTokens: 8, eosIds: [] });
    const dense = naive.stats();
    await naive.close();
    expect(sparse.cacheHits).toBeGreaterThan(0);
    expect(sparse.bytesReadPerToken).toBeLessThan(dense.bytesReadPerToken / 3);
    expect(sparse.neededBytes).toBe(sparse.bytesRead); // no merging asked: exactly the missing neurons
  });
});

describe('options', () => {
  it('parses budgets and rejects ones that hold nothing', async () => {
    expect(budgetBytes('50%', 1000)).toBe(500);
    expect(budgetBytes(1234, 1000)).toBe(1234);
    expect(() => budgetBytes('lots' as `${number}%`, 1)).toThrow(InvalidArgumentError);
    await expect(openFlash(bundled, { memoryBudget: 100 })).rejects.toThrow(/holds no neuron/);
    await expect(openFlash(bundled, { memoryBudget: 100, strategy: 'naive' })).rejects.toThrow(
      /one neuron/,
    );
    await expect(
      openFlash(bundled, { predictor: { kind: 'low-rank', path: join(work, 'none') } }),
    ).rejects.toThrow(/cannot open/);
  });
});
