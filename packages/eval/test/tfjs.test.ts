import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import '@edkm/backend-webgpu';
import { tf, useBackend } from '@edkm/core';
import { seededRandom, testBackends } from '@edkm/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromLogitsFn, loglikelihood, perplexityOfTokens } from '../src/index';
import { FakeModel, PieceTokenizer } from './fake';

const backends = await testBackends();
const tok = new PieceTokenizer(['a', 'b', 'c', 'd', ' ', 'ab', 'cd', 'yes', ' no']);
const V = tok.vocabSize;
const r = seededRandom(7);
const table = Float32Array.from({ length: V * V }, () => r() * 6 - 3);
/** The same bigram model in plain JS (float64 log-softmax of the table's rows). */
const reference = new FakeModel(tok, (prefix) => {
  const row = Float64Array.from(table.subarray(prefix[prefix.length - 1] * V).subarray(0, V));
  const m = Math.max(...row);
  const lz = m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
  return row.map((x) => x - lz);
});

describe.each(backends)('fromLogitsFn on %s', (backend) => {
  beforeAll(() => useBackend(backend));
  it('scores padded batches like the plain reference; no tensors leak', async () => {
    const w = tf.tensor2d(table, [V, V]);
    const model = fromLogitsFn({
      logits: (ids) => tf.gather(w, ids) as unknown as tf.Tensor3D,
      encode: (t, o) => tok.encode(t, o),
      maxLength: 16,
      prefixTokenId: 1,
    });
    const reqs = [
      { context: 'ab', continuation: ' cd' },
      { context: 'a', continuation: 'yes' },
      { context: 'a', continuation: ' no' }, // shares its input with 'yes' (last row)
      { context: 'abcd abcd', continuation: ' d' },
    ];
    const before = tf.memory().numTensors;
    const got = await loglikelihood(model, reqs, { batchSize: 3 });
    const want = await loglikelihood(reference, reqs);
    got.forEach((g, i) => {
      expect(g.logLikelihood).toBeCloseTo(want[i].logLikelihood, 4);
      expect(g.isGreedy).toBe(want[i].isGreedy);
    });
    const ids = tok.encode('abcd ab cd a b c d yes no abab');
    const p = await perplexityOfTokens(model, ids, { window: 6, stride: 3 });
    const q = await perplexityOfTokens(reference, ids, { window: 6, stride: 3 });
    expect(p.nll).toBeCloseTo(q.nll, 4);
    expect(tf.memory().numTensors).toBe(before);
    w.dispose();
  });
});
