import '@edkm/backend-cpu';
import { useBackend } from '@edkm/core';
import { type LoadedLlama, defaultModelDir, loadLlama } from '@edkm/llama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AlpacaDataset, loadAlpaca } from '../src/index';

// The batches feed the shipped model's loss as they are: a packed row (segments, restarted
// positions, -100 at boundaries) must give the loss of the same examples padded one per row.
describe('batches in LlamaModel.loss (cpu)', () => {
  let llama: LoadedLlama;
  let short: AlpacaDataset;
  beforeAll(async () => {
    await useBackend('cpu');
    llama = loadLlama(defaultModelDir());
    const rows = [
      { instruction: 'Add the numbers.', input: '2 and 3', output: 'The sum is 5.' },
      { instruction: 'Name a color.', input: '', output: 'Blue.' },
      { instruction: 'Give the opposite of the word.', input: 'night', output: 'Day.' },
    ];
    short = await loadAlpaca(rows, {
      tokenizer: llama.tokenizer,
      template: { input: '{instruction}\n{input}\n', noInput: '{instruction}\n' },
      maxLength: 64,
    });
  });
  afterAll(() => llama.model.dispose());

  it('packed loss equals padded loss; without segments and positions it does not', () => {
    expect(short.size).toBe(3);
    const [packed] = [...short.batches({ batchSize: 1, packing: true, shuffle: false })];
    const [padded] = [...short.batches({ batchSize: 3, shuffle: false })];
    expect(packed.inputIds).toHaveLength(1);
    expect(packed.examples).toBe(3);
    const lossOf = (b: typeof packed, withSegments = true) => {
      const t = llama.model.loss(b.inputIds, b.labels, {
        attentionMask: b.attentionMask,
        ...(withSegments ? { segmentIds: b.segmentIds, positionIds: b.positionIds } : {}),
      });
      const v = t.dataSync()[0];
      t.dispose();
      return v;
    };
    const pad = lossOf(padded);
    expect(Number.isFinite(pad)).toBe(true);
    expect(lossOf(packed)).toBeCloseTo(pad, 4);
    expect(Math.abs(lossOf(packed, false) - pad)).toBeGreaterThan(1e-3);
  });
});
