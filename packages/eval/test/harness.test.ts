import { InvalidArgumentError } from '@edkm/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type McDoc,
  argmax,
  encodePair,
  evaluateDocs,
  formatTable,
  loglikelihood,
  meanStderr,
  progressLine,
  scoreSequences,
  tokenRequest,
} from '../src/index';
import { pyCapitalize, pyLen, pyRstrip, pyStrip } from '../src/text';
import { FakeModel, PieceTokenizer, bigram, prefixHash } from './fake';

// ids: 0 <unk>, 1 <s>, 2 </s>, then from 3 on:
const PIECES = ['Answer', ':', ' ', 'yes', ' yes', 'no', ' no', 'a', 'b', 'c', 'd', 'bc', '\n'];
const [ANSWER, COLON, SPACE, YES, SP_YES, , SP_NO, A, B, C, D, BC, NL] = PIECES.map(
  (_, i) => i + 3,
);
const tok = new PieceTokenizer(PIECES);
const V = tok.vocabSize; // 16
/** p(next | prev) = 3/18 if next = prev + 1, else 1/18 (1/16 each after the last id). */
const hand = () =>
  new FakeModel(
    tok,
    bigram((p, n) => (n === p + 1 ? 3 : 1), V),
  );
const ln = Math.log;

describe('python string semantics', () => {
  it('strip/rstrip use str.isspace, len counts code points, capitalize lowers the rest', () => {
    expect(pyRstrip('a \t\n\u3000\x1c')).toBe('a');
    expect(pyRstrip('a\uFEFF')).toBe('a\uFEFF'); // not whitespace in Python
    expect(pyStrip('  x y \n')).toBe('x y');
    expect(pyLen('fārsi 😀')).toBe(7);
    expect(pyCapitalize('the LADY')).toBe('The lady');
    expect(pyCapitalize('')).toBe('');
  });
});

describe('_encode_pair', () => {
  const m = hand();
  it('moves trailing whitespace of the context to the continuation', () => {
    expect(encodePair(m, 'Answer: ', 'yes')).toEqual({
      contextEnc: [1, ANSWER, COLON],
      continuationEnc: [SP_YES],
    });
    expect(encodePair(m, 'Answer:', ' yes')).toEqual(encodePair(m, 'Answer: ', 'yes'));
    // without the move the space would be a token of its own in the context
    expect(m.encode('Answer: ')).toEqual([1, ANSWER, COLON, SPACE]);
    expect(encodePair(m, 'Answer: \n', 'yes').continuationEnc).toEqual([SPACE, NL, YES]);
  });
  it('splits encode(context + continuation) at len(encode(context))', () => {
    // "abcd" → a|bc|d: the token "bc" straddles the boundary, so only "d" is scored
    expect(encodePair(m, 'ab', 'cd')).toEqual({ contextEnc: [1, A, B], continuationEnc: [D] });
    expect(() => tokenRequest(m, { context: 'ab', continuation: 'c' })).toThrow(
      InvalidArgumentError,
    );
  });
  it('an empty context becomes the prefix token', () => {
    expect(encodePair(m, '', ' yes')).toEqual({ contextEnc: [1], continuationEnc: [SP_YES] });
  });
  it('left-truncates to maxLength + 1 tokens', async () => {
    const short = new FakeModel(tok, hand().next, 4);
    const req = tokenRequest(short, { context: 'aaaaaa', continuation: 'b' });
    expect(req).toEqual({ tokens: [A, A, A, A, B], contLen: 1 });
    const [r] = await loglikelihood(short, [{ context: 'aaaaaa', continuation: 'b' }]);
    expect(short.batches).toEqual([[[A, A, A, A, B]]]);
    expect(r.logLikelihood).toBeCloseTo(ln(3 / 18), 6);
    expect(() => tokenRequest(short, { context: 'a', continuation: 'bababa' })).toThrow(
      /longer than the model's maximum length 4/,
    );
  });
});

describe('loglikelihood', () => {
  it('sums the continuation tokens log-probs; is_greedy', async () => {
    const m = hand();
    const [r1, r2, r3] = await loglikelihood(m, [
      { context: 'Answer:', continuation: ' yes' }, // p(' yes' | ':') = 1/18
      { context: 'Answer: ', continuation: '\nyes' }, // ' ' after ':' (3/18), '\n' after ' ', 'yes' after '\n' (1/16)
      { context: 'a', continuation: 'b' }, // 3/18, the arg-max
    ]);
    expect(r1.logLikelihood).toBeCloseTo(ln(1 / 18), 6);
    expect(r1.isGreedy).toBe(false);
    expect(r2.logLikelihood).toBeCloseTo(ln(3 / 18) + ln(1 / 18) + ln(1 / 16), 5);
    expect(r2.tokens).toBe(3);
    expect(r3).toEqual({ logLikelihood: expect.closeTo(ln(3 / 18), 6), isGreedy: true, tokens: 1 });
  });

  it('runs identical requests once, shares one-token continuations and prefixes', async () => {
    const m = hand();
    const reqs = [
      { context: 'Answer:', continuation: ' yes' },
      { context: 'Answer:', continuation: ' no' }, // same input as ' yes' → same pass (last row)
      { context: 'Answer:', continuation: ' yes' }, // identical
      { context: 'a', continuation: 'b' }, // prefix of the next one
      { context: 'a', continuation: 'bd' },
    ];
    const out = await loglikelihood(m, reqs, { batchSize: 8 });
    expect(m.sequencesRun).toBe(2);
    expect(out[0]).toEqual(out[2]);
    expect(out[1].logLikelihood).toBeCloseTo(ln(1 / 18), 6);
    expect(out[3].logLikelihood).toBeCloseTo(ln(3 / 18), 6);
    expect(out[4].logLikelihood).toBeCloseTo(ln(3 / 18) + ln(1 / 18), 6);
  });

  it('batches longest first, batchSize per pass', async () => {
    const m = hand();
    await scoreSequences(
      m,
      [
        [1, A],
        [1, B, C, D],
        [1, C, D],
        [1, D, A, B, C],
      ],
      { batchSize: 2 },
    );
    expect(m.batches.map((b) => b.map((s) => s.length))).toEqual([
      [5, 4],
      [3, 2],
    ]);
  });

  it('equals one-by-one scoring for any mix of shared contexts (property)', async () => {
    const text = fc.stringOf(fc.constantFrom('a', 'b', 'c', 'd', ' ', 'yes', 'no'), {
      minLength: 0,
      maxLength: 6,
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(
            text,
            text.filter((s) => s.length > 0),
          ),
          { minLength: 1, maxLength: 12 },
        ),
        fc.integer({ min: 1, max: 5 }),
        async (pairs, batchSize) => {
          const m = new FakeModel(tok, prefixHash(V), 8);
          const reqs = pairs
            .map(([context, continuation]) => ({ context, continuation }))
            .filter((r) => {
              try {
                tokenRequest(m, r);
                return true;
              } catch {
                return false; // continuations that vanish into the context's last token
              }
            });
          const out = await loglikelihood(m, reqs, { batchSize });
          reqs.forEach((r, i) => {
            const { tokens, contLen } = tokenRequest(m, r);
            const want = m.sumLogProbs(tokens, tokens.length - contLen);
            expect(out[i].logLikelihood).toBeCloseTo(want, 4);
          });
          const distinct = new Set(reqs.map((r) => tokenRequest(m, r).tokens.join(','))).size;
          expect(m.sequencesRun).toBeLessThanOrEqual(distinct);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('rejects a model that returns the wrong lengths', async () => {
    const m = hand();
    const bad = {
      ...m,
      encode: m.encode.bind(m),
      score: async () => [{ logProbs: new Float32Array(1), greedy: new Int32Array(1) }],
    };
    await expect(scoreSequences(bad, [[1, A, B]])).rejects.toThrow(/expected 2/);
  });
});

describe('metrics', () => {
  it('stderr is the sample stdev over √n; N/A below two items', () => {
    expect(meanStderr([1, 0, 1, 1])).toBeCloseTo(0.25, 12);
    expect(meanStderr([1, 1])).toBe(0);
    expect(meanStderr([1])).toBeNull();
    // p(1 − p)·n/(n − 1)/n for 0/1 items
    const xs = Array.from({ length: 100 }, (_, i) => (i < 37 ? 1 : 0));
    expect(meanStderr(xs)).toBeCloseTo(Math.sqrt((0.37 * 0.63) / 99), 12);
  });
  it('argmax takes the first maximum, like np.argmax', () => {
    expect(argmax([-2, -1, -1])).toBe(1);
    expect(argmax([-2, Number.NaN, 0])).toBe(1);
  });

  it('acc and acc_norm (log-likelihood / characters of the choice)', async () => {
    const m = hand();
    const doc = (context: string, choices: string[], gold: number, delim = ''): McDoc => ({
      requests: choices.map((c) => ({ context, continuation: delim + c })),
      gold,
      choiceLengths: choices.map(pyLen),
      source: 'test',
    });
    // 'c' after 'a': ln(1/18) = −2.89 per 1 char; 'bcd' → a|bc|d: ln(1/18)·2 = −5.78 over 3 chars = −1.93
    const docs = [doc('a', ['c', 'bcd'], 1), doc('a', ['c', 'bcd'], 0), doc('a', ['b', 'c'], 0)];
    const r = await evaluateDocs(m, 'multiple_choice', docs, { samples: true });
    expect(r.samples!.map((s) => [s.pred, s.predNorm])).toEqual([
      [0, 1],
      [0, 1],
      [0, 0],
    ]);
    expect(r.acc).toBeCloseTo(2 / 3, 12);
    expect(r.acc_norm).toBeCloseTo(2 / 3, 12);
    expect(r.acc_stderr).toBeCloseTo(Math.sqrt(1 / 3) / Math.sqrt(3), 12);
    expect(r.samples![0].lls[1]).toBeCloseTo(2 * ln(1 / 18), 5);
    expect(r).toMatchObject({ task: 'multiple_choice', n: 3, requests: 6, forwardSequences: 2 });
    // winogrande/boolq report acc only, as their harness YAMLs do
    const w = await evaluateDocs(m, 'boolq', docs);
    expect(w.acc_norm).toBeUndefined();
    expect(w.metrics).toEqual(['acc']);
    const table = formatTable([r, w]);
    expect(table).toContain('acc_norm');
    expect(table.split('\n')).toHaveLength(4);
  });
});

describe('progressLine', () => {
  it('redraws one line on a TTY and prints only the final line elsewhere', () => {
    const out = { tty: '', plain: '' };
    const a = progressLine({
      write: (s: string) => {
        out.tty += s;
      },
      isTTY: true,
    });
    const b = progressLine({
      write: (s: string) => {
        out.plain += s;
      },
    });
    for (const f of [a, b]) {
      f({ task: 'piqa', phase: 'score', done: 0, total: 4 });
      f({ task: 'piqa', phase: 'score', done: 4, total: 4 });
    }
    expect(out.tty).toMatch(/^\rpiqa score 0\/4 0% .*\rpiqa score 4\/4 100% .*\n$/s);
    expect(out.plain).toMatch(/^piqa score 4\/4 100% [\d.]+\/s ETA 0s\n$/);
  });
});
