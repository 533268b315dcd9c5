import '@edkm/backend-cpu';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError, seededRandom, tf, useBackend } from '@edkm/core';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  FlashLayout,
  LowRankPredictor,
  collectFfnInputs,
  fitLowRankPredictor,
  fromChoices,
  openFlash,
  predictorQuality,
  resolveTopK,
  selectFromScores,
  trainPredictor,
  writeFlashLayout,
} from '../src/index';
import { cholesky, invertLower, matmul, symmetricEigen } from '../src/linalg';
import { tempDir, writeToyModel } from './helpers';

const work = tempDir('predictor');
const toy = join(work, 'toy-flash');
const text = readFileSync(join(__dirname, '../../../data/tinyshakespeare/input.txt'), 'utf8').slice(
  0,
  12_000,
);

beforeAll(async () => {
  await useBackend('cpu');
  writeFlashLayout(writeToyModel(join(work, 'toy')), toy);
});

describe('selection', () => {
  it('top-k and threshold pick, per token, exactly the brute-force sets', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 12 }),
        fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
        fc.integer(),
        (T, I, k, threshold, seed) => {
          const random = seededRandom(seed);
          const scores = Float32Array.from({ length: T * I }, () => random()); // distinct a.s.
          const topK = Math.min(k, I);
          const sel = selectFromScores(scores, T, I, { topK, threshold });
          for (let t = 0; t < T; t++) {
            const row = Array.from(scores.subarray(t * I, (t + 1) * I));
            const expected = row
              .map((s, i) => [s, i])
              .filter(([s]) => threshold === undefined || s > threshold)
              .sort((a, b) => b[0] - a[0])
              .slice(0, topK)
              .map(([, i]) => i)
              .sort((a, b) => a - b);
            const used = [...sel.neurons].filter(
              (_, j) => !sel.mask || sel.mask[t * sel.neurons.length + j] === 1,
            );
            expect(used).toEqual(expected);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('one token or equal choices need no mask; topK as a fraction or a count', () => {
    expect(fromChoices(Uint8Array.from([1, 0, 1, 1, 0, 1]), 2, 3)).toEqual({
      neurons: Int32Array.from([0, 2]),
    });
    expect(fromChoices(Uint8Array.from([1, 0, 0, 0, 0, 1]), 2, 3).mask).toEqual(
      Float32Array.from([1, 0, 0, 1]),
    );
    expect(resolveTopK(0.25, 768)).toBe(192);
    expect(resolveTopK(10, 768)).toBe(10);
    expect(resolveTopK(undefined, 768)).toBe(768);
    expect(() => resolveTopK(1.5, 768)).toThrow(/integer/);
    expect(() => resolveTopK(0, 768)).toThrow(/positive/);
  });
});

describe('linear algebra', () => {
  it('symmetric eigen-decomposition: A V = V Λ, V orthonormal, Λ descending', () => {
    const n = 30;
    const random = seededRandom(3);
    const b = Float64Array.from({ length: n * n }, () => random() - 0.5);
    const a = matmul(
      b,
      Float64Array.from({ length: n * n }, (_, i) => b[(i % n) * n + Math.floor(i / n)]),
      n,
      n,
      n,
    );
    const { values, vectors } = symmetricEigen(a, n);
    const av = matmul(a, vectors, n, n, n);
    let err = 0;
    for (let i = 0; i < n * n; i++)
      err = Math.max(err, Math.abs(av[i] - vectors[i] * values[i % n]));
    expect(err).toBeLessThan(1e-10);
    for (let i = 1; i < n; i++) expect(values[i]).toBeLessThanOrEqual(values[i - 1]);
    let dot = 0;
    for (let r = 0; r < n; r++) dot += vectors[r * n + 2] * vectors[r * n + 5];
    expect(Math.abs(dot)).toBeLessThan(1e-12);
    // Cholesky and the triangular inverse
    const l = cholesky(
      a.map((v, i) => v + (i % (n + 1) === 0 ? 1 : 0)),
      n,
    );
    const eye = matmul(l, invertLower(l, n), n, n, n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) expect(eye[i * n + j]).toBeCloseTo(i === j ? 1 : 0, 10);
  });
});

describe('low-rank predictor', () => {
  it('is exact at full rank, good below it, and trained on real text it saves, loads and runs', async () => {
    const flash = await openFlash(toy);
    const activations = await collectFfnInputs(flash, flash.tokenizer!.encode(text), {
      maxTokens: 1024,
      heldOutTokens: 256,
    });
    await flash.close();
    expect(activations.tokens).toBe(1024);
    expect(activations.heldOut[1].length).toBe(256 * 32);
    const layout = new FlashLayout(toy);
    // rank = hidden: the predicted pre-activations are the true ones
    const full = fitLowRankPredictor(layout, activations, { rank: 32 });
    const exact = predictorQuality(layout, full, activations, 0.25);
    for (const r of exact.recall) expect(r).toBeGreaterThan(0.99);
    full.dispose();
    const low = fitLowRankPredictor(layout, activations, { rank: 8 });
    const q = predictorQuality(layout, low, activations, 0.25);
    for (let l = 0; l < 2; l++) {
      expect(q.recall[l]).toBeGreaterThan(0.4); // random choice: 0.25
      expect(q.recall[l]).toBeLessThan(0.99);
      expect(q.massCaptured[l]).toBeGreaterThan(q.recall[l]);
    }
    // a saved predictor gives the same scores
    const path = join(work, 'p.safetensors');
    low.save(path);
    const loaded = LowRankPredictor.load(
      path,
      { topK: 16 },
      { layers: 2, hiddenSize: 32, intermediateSize: 64 },
    );
    const x = tf.tensor2d(activations.heldOut[0].subarray(0, 5 * 32), [5, 32]);
    expect(loaded.scores(0, x).dataSync()).toEqual(low.scores(0, x).dataSync());
    const sel = await loaded.select(0, x);
    expect(sel.neurons.length).toBeGreaterThanOrEqual(16);
    tf.dispose(x);
    loaded.dispose();
    low.dispose();
  });

  it('trainPredictor writes the predictor that { kind: "low-rank" } opens', async () => {
    const { path, quality, tokens } = await trainPredictor(toy, text, {
      rank: 8,
      maxTokens: 512,
      heldOutTokens: 128,
    });
    expect(path).toBe(join(toy, 'predictor.safetensors'));
    expect(tokens).toBe(512);
    expect(quality.recall.every((r) => r > 0.3)).toBe(true);
    const flash = await openFlash(toy, {
      predictor: { kind: 'low-rank', topK: 8 },
      memoryBudget: '50%',
    });
    expect(flash.predictor.name).toBe('low-rank r=8 top-8');
    const ids = await flash.generate(flash.tokenizer!.encode('ROMEO:'), {
      maxNewTokens: 5,
      eosIds: [],
    });
    expect(ids).toHaveLength(5);
    // one token: exactly topK neurons in each of the 2 layers
    flash.resetStats();
    (await flash.forward([5])).dispose();
    expect(flash.stats().neuronsUsed).toBe(2 * 8);
    await flash.close();
  });

  it('rejects a file that is not a predictor or does not fit the model', () => {
    const bogus = join(work, 'bogus.safetensors');
    writeFileSync(bogus, Buffer.from('nonsense'));
    expect(() => LowRankPredictor.load(bogus)).toThrow(FormatError);
    expect(() => LowRankPredictor.load(join(toy, 'resident.safetensors'))).toThrow(
      /not a flash predictor/,
    );
    expect(() =>
      LowRankPredictor.load(
        join(toy, 'predictor.safetensors'),
        {},
        { layers: 6, hiddenSize: 288, intermediateSize: 768 },
      ),
    ).toThrow(/does not fit/);
  });
});
