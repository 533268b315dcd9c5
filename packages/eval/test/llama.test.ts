import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import '@edkm/backend-webgpu';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf, useBackend } from '@edkm/core';
import { testBackends } from '@edkm/core/testing';
import { type LoadedLlama, loadLlama } from '@edkm/llama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type McDoc,
  type McTaskName,
  type ScoringModel,
  evaluateDocs,
  fromLlama,
  loadTask,
  loglikelihood,
  perplexity,
  tokenRequest,
} from '../src/index';

const ROOT = join(__dirname, '../../..');
const MODEL = join(ROOT, 'models/edkm-tiny');
const fx = (p: string) => join(__dirname, 'fixtures', p);

interface RefResult {
  tokens: number[];
  cont_len: number;
  ll: number;
  is_greedy: boolean;
}
interface RefDoc {
  requests: [string, string][];
  gold: number;
  choice_lengths: number[];
  results: RefResult[];
  pred: number;
  pred_norm: number;
}
const ref = JSON.parse(readFileSync(fx('reference-lls.json'), 'utf8')) as {
  max_length: number;
  tasks: Record<string, RefDoc[]>;
  raw: (RefResult & { context: string; continuation: string })[];
  ppl: { window: number; stride: number; tokens: number; scored: number; nll: number }[];
};

/** The reference's task sets, loaded by this package from the same files. */
const SETS: Record<string, [McTaskName, string, { limit?: number; maxLength?: number }?]> = {
  piqa: ['piqa', fx('piqa/valid.jsonl')],
  'piqa-hf': ['piqa', fx('piqa/piqa-hf.jsonl')],
  winogrande: ['winogrande', fx('winogrande/dev.jsonl')],
  arc_challenge: ['arc_challenge', fx('arc/ARC-Challenge-Dev.jsonl')],
  arc_easy: ['arc_easy', fx('arc/arc-easy-hf.jsonl')],
  hellaswag: ['hellaswag', fx('hellaswag/hellaswag_val.jsonl')],
  boolq: ['boolq', fx('boolq/dev.jsonl')],
  'boolq-sg': ['boolq', fx('boolq/super_glue-val.jsonl')],
  'boolq-max64': ['boolq', fx('boolq/dev.jsonl'), { maxLength: 64 }],
  'shakespeare-next-line': [
    'multiple_choice',
    join(ROOT, 'data/eval/shakespeare-next-line.jsonl'),
    { limit: 12 },
  ],
  'alpaca-mc': ['multiple_choice', join(ROOT, 'data/eval/alpaca-mc.jsonl'), { limit: 6 }],
};

/** Docs scored per set (the rest are checked for requests and tokens only). */
const SCORED: Record<string, number> = {
  boolq: 1,
  'shakespeare-next-line': 4,
  'alpaca-mc': 2,
  hellaswag: 2,
};

/** log-softmax over a logits row, in float64. */
function logSoftmax(row: Float32Array): Float64Array {
  let m = Number.NEGATIVE_INFINITY;
  for (const x of row) m = Math.max(m, x);
  let z = 0;
  for (const x of row) z += Math.exp(x - m);
  const lz = m + Math.log(z);
  return Float64Array.from(row, (x) => x - lz);
}

/** −log p of every token of `ids` after the first, from one plain forward pass. */
async function bruteForce(llama: LoadedLlama, ids: number[]): Promise<Float64Array> {
  const logits = llama.model.forward([ids.slice(0, -1)]);
  const data = (await logits.data()) as Float32Array;
  logits.dispose();
  const V = data.length / (ids.length - 1);
  return Float64Array.from({ length: ids.length - 1 }, (_, t) => {
    return -logSoftmax(data.subarray(t * V, (t + 1) * V))[ids[t + 1]];
  });
}

describe('the shipped model against transformers (cpu)', () => {
  let llama: LoadedLlama;
  let model: ScoringModel;
  beforeAll(async () => {
    await useBackend('cpu');
    llama = loadLlama(MODEL);
    model = fromLlama(llama);
  });
  afterAll(() => llama.model.dispose());

  it('adapter: BOS, context length', () => {
    expect(model.maxLength).toBe(ref.max_length);
    expect(model.prefixTokenId).toBe(1);
    expect(model.encode('ROMEO:')[0]).toBe(1);
  });

  it.each(Object.keys(ref.tasks))(
    '%s: same requests, tokens, log-likelihoods, predictions',
    async (name) => {
      const [task, file, o = {}] = SETS[name];
      const m = o.maxLength ? fromLlama(llama, { maxLength: o.maxLength }) : model;
      const docs: McDoc[] = loadTask(task, file, { limit: o.limit });
      const want = ref.tasks[name];
      // requests and tokens of every reference doc; scores of the first few (the cpu backend
      // scores ~150 tokens/s, and the CI budget is minutes)
      const scored = SCORED[name] ?? want.length;
      expect(docs.map((d) => d.requests.map((r) => [r.context, r.continuation]))).toEqual(
        want.map((d) => d.requests),
      );
      expect(docs.map((d) => [d.gold, d.choiceLengths])).toEqual(
        want.map((d) => [d.gold, d.choice_lengths]),
      );
      docs.forEach((d, i) =>
        d.requests.forEach((r, j) => {
          const { tokens, contLen } = tokenRequest(m, r);
          expect([tokens, contLen]).toEqual([
            want[i].results[j].tokens,
            want[i].results[j].cont_len,
          ]);
        }),
      );
      const res = await evaluateDocs(m, task, docs.slice(0, scored), {
        samples: true,
        batchSize: 4,
      });
      expect(res.samples).toHaveLength(scored);
      res.samples!.forEach((s, i) => {
        const w = want[i];
        s.lls.forEach((ll, j) => expect(Math.abs(ll - w.results[j].ll)).toBeLessThan(1e-3)); // the bound; seen: ≤ 5e-5
        expect(s.isGreedy).toEqual(w.results.map((r) => r.is_greedy));
        const margin = (xs: number[]) => {
          const sorted = [...xs].sort((a, b) => b - a);
          return sorted[0] - sorted[1];
        };
        if (margin(w.results.map((r) => r.ll)) > 1e-2) expect(s.pred).toBe(w.pred);
        if (margin(w.results.map((r, j) => r.ll / w.choice_lengths[j])) > 1e-2)
          expect(s.predNorm).toBe(w.pred_norm);
      });
    },
  );

  it('raw requests: empty context, whitespace moved into the continuation', async () => {
    const out = await loglikelihood(model, ref.raw);
    ref.raw.forEach((r, i) => {
      expect(tokenRequest(model, r).tokens).toEqual(r.tokens);
      expect(out[i].logLikelihood).toBeCloseTo(r.ll, 3);
      expect(out[i].isGreedy).toBe(r.is_greedy);
    });
  });

  it('a choice log-likelihood is the sum over the full log-softmax of one plain forward pass', async () => {
    const req = {
      context: 'ROMEO:\nBut soft, what light through yonder',
      continuation: ' window breaks?',
    };
    const { tokens, contLen } = tokenRequest(model, req);
    const nll = await bruteForce(llama, tokens);
    const want = -nll.subarray(nll.length - contLen).reduce((s, x) => s + x, 0);
    const [got] = await loglikelihood(model, [req, { ...req, continuation: ' door' }], {
      batchSize: 2,
    });
    expect(got.logLikelihood).toBeCloseTo(want, 4);
  });

  it(
    'sliding-window perplexity equals transformers for strided windows',
    { timeout: 180_000 },
    async () => {
      const text = readFileSync(join(ROOT, 'data/eval/shakespeare-val.txt'), 'utf8').slice(0, 3000);
      // every reference setting but the 1024-token window (the same code path, 4× the cpu time)
      for (const p of ref.ppl.filter((q) => q.window <= 256)) {
        const r = await perplexity(model, text, {
          window: p.window,
          stride: p.stride,
          batchSize: 4,
        });
        expect([r.tokens, r.scoredTokens]).toEqual([p.tokens, p.scored]);
        expect(Math.abs(r.nll - p.nll)).toBeLessThan(1e-4);
      }
    },
  );

  it('window ≥ length: perplexity is the brute-force per-token NLL', async () => {
    const text =
      'PROSPERO:\nThou liest, malignant thing! Hast thou forgot\nThe foul witch Sycorax?';
    const ids = model.encode(text);
    const nll = await bruteForce(llama, ids);
    const r = await perplexity(model, text, { window: 64, stride: 16 });
    expect(r.scoredTokens).toBe(ids.length - 1);
    expect(r.nll).toBeCloseTo(nll.reduce((s, x) => s + x, 0) / nll.length, 5);
  });
});

const gpu = (await testBackends()).filter((b) => b !== 'cpu');

describe.each(gpu)('the shipped model on %s matches cpu', (backend) => {
  let llama: LoadedLlama;
  beforeAll(async () => {
    await useBackend(backend);
    llama = loadLlama(MODEL);
  });
  afterAll(() => llama.model.dispose());

  it('log-likelihoods within 1e-3, perplexity within 1e-4 relative; no tensors leak', async () => {
    const model = fromLlama(llama);
    const [doc] = ref.tasks.piqa.slice(2);
    const before = tf.memory().numTensors;
    const out = await loglikelihood(
      model,
      doc.requests.map(([context, continuation]) => ({ context, continuation })),
    );
    out.forEach((r, j) => expect(Math.abs(r.logLikelihood - doc.results[j].ll)).toBeLessThan(1e-3));
    const text = readFileSync(join(ROOT, 'data/eval/shakespeare-val.txt'), 'utf8').slice(0, 400);
    const p = await perplexity(model, text, { window: 64, stride: 32 });
    await useBackend('cpu');
    const cpuLlama = loadLlama(MODEL);
    const q = await perplexity(fromLlama(cpuLlama), text, { window: 64, stride: 32 });
    cpuLlama.model.dispose();
    await useBackend(backend);
    expect(Math.abs(p.nll - q.nll) / q.nll).toBeLessThan(1e-4);
    expect(tf.memory().numTensors).toBe(before);
  });
});
