import { beforeAll, describe, expect, it } from 'vitest';
import {
  type AlpacaBatch,
  type AlpacaDataset,
  AlpacaRowError,
  type BatchOptions,
  FormatError,
  IGNORE_INDEX,
  InvalidArgumentError,
  type LoadProgress,
  defaultAlpacaPath,
  loadAlpaca,
  renderExample,
} from '../src/index';
import { fixture, loadTokenizer, readJson } from './util';

const tokenizer = loadTokenizer();
const seedPath = defaultAlpacaPath();
const seedRows = readJson(seedPath);
const EOS = tokenizer.eosId;

let ds: AlpacaDataset; // maxLength 512: 3 rows skipped (prompt ≥ 512 tokens), a few truncated
let full: AlpacaDataset; // maxLength 4096: every row whole
beforeAll(async () => {
  ds = await loadAlpaca(seedPath, { tokenizer, maxLength: 512 });
  full = await loadAlpaca(seedPath, { tokenizer, maxLength: 4096 });
});

/** Every batch of a run. */
const run = (d: AlpacaDataset, opts: BatchOptions) => [...d.batches(opts)];
const rowsOf = (batches: AlpacaBatch[]) => batches.flatMap((b) => b.inputIds);

describe('tokenized examples', () => {
  it('are encode(prompt) (BOS first), then encode(output) without specials, then EOS', () => {
    for (let i = 0; i < 12; i++) {
      const ex = ds.example(i);
      const { prompt, response } = renderExample(seedRows[ex.row - 1]);
      const promptIds = tokenizer.encode(prompt, { addSpecialTokens: true });
      const responseIds = tokenizer.encode(response, { addSpecialTokens: false });
      expect(promptIds[0]).toBe(tokenizer.bosId);
      expect(ex.promptLength).toBe(promptIds.length);
      expect(ex.inputIds).toEqual([...promptIds, ...responseIds, EOS]);
    }
    // both templates occur among the first rows
    expect(seedRows.slice(0, 12).some((r) => r.input === '')).toBe(true);
    expect(seedRows.slice(0, 12).some((r) => r.input !== '')).toBe(true);
  });

  it('labels: -100 on the prompt, the input ids on the response and EOS', () => {
    for (let i = 0; i < ds.size; i++) {
      const { inputIds, labels, promptLength } = ds.example(i);
      expect(labels).toEqual(inputIds.map((id, j) => (j < promptLength ? IGNORE_INDEX : id)));
    }
  });

  it('trainOnPrompt: every label but the first is learned', async () => {
    const d = await loadAlpaca(seedPath, {
      tokenizer,
      maxLength: 512,
      trainOnPrompt: true,
      limit: 5,
    });
    const { inputIds, labels } = d.example(0);
    expect(labels).toEqual([IGNORE_INDEX, ...inputIds.slice(1)]);
  });

  it("boundary 'joint' is Stanford Alpaca's recipe: encode(prompt + output), first encode(prompt).length masked", async () => {
    const d = await loadAlpaca(seedPath, {
      tokenizer,
      maxLength: 512,
      boundary: 'joint',
      limit: 5,
    });
    for (let i = 0; i < 5; i++) {
      const { prompt, response } = renderExample(seedRows[i]);
      const ex = d.example(i);
      expect(ex.inputIds).toEqual([
        ...tokenizer.encode(prompt + response, { addSpecialTokens: true }),
        EOS,
      ]);
      expect(ex.promptLength).toBe(tokenizer.encode(prompt, { addSpecialTokens: true }).length);
    }
  });

  it('a user template is rendered and split at {output}', async () => {
    const d = await loadAlpaca(seedPath, {
      tokenizer,
      template: '### Q:\n{instruction}\n{input}\n### A:\n{output}\n',
      limit: 2,
    });
    const r = seedRows[0];
    const prompt = `### Q:\n${r.instruction}\n${r.input}\n### A:\n`;
    const ex = d.example(0);
    expect(ex.inputIds).toEqual([
      ...tokenizer.encode(prompt, { addSpecialTokens: true }),
      ...tokenizer.encode(`${r.output}\n`, { addSpecialTokens: false }),
      EOS,
    ]);
  });
});

describe('truncation', () => {
  it('keeps the prompt whole and cuts the response tail (EOS too); prompts filling maxLength are skipped and counted', async () => {
    const maxLength = 128;
    const d = await loadAlpaca(seedPath, { tokenizer, maxLength });
    expect(full.size).toBe(175);
    const kept: number[] = [];
    let truncated = 0;
    for (let i = 0; i < full.size; i++) {
      const { inputIds, promptLength } = full.example(i);
      if (promptLength >= maxLength) continue;
      kept.push(i);
      if (inputIds.length > maxLength) truncated++;
    }
    expect(d.size).toBe(kept.length);
    const skipped = full.size - kept.length;
    expect(skipped).toBeGreaterThan(0);
    expect(truncated).toBeGreaterThan(0);
    expect(d.report.skipped).toMatchObject({
      total: skipped,
      byReason: { 'prompt-too-long': skipped },
    });
    expect(d.stats().truncated).toBe(truncated);
    for (const [k, i] of kept.entries()) {
      const ex = d.example(k);
      const whole = full.example(i);
      expect(ex.row).toBe(whole.row);
      expect(ex.promptLength).toBe(whole.promptLength);
      expect(ex.inputIds).toEqual(whole.inputIds.slice(0, maxLength));
      expect(ex.labels).toEqual(whole.labels.slice(0, maxLength));
    }
  });

  it("overlongPrompt 'error': an AlpacaRowError naming the row", async () => {
    const err = await loadAlpaca(seedPath, {
      tokenizer,
      maxLength: 128,
      overlongPrompt: 'error',
    }).catch((e) => e);
    expect(err).toBeInstanceOf(AlpacaRowError);
    expect(err.reason).toBe('prompt-too-long');
    expect(err.message).toMatch(
      /alpaca_seed\.json: row \d+ \(line \d+\): the prompt alone has \d+ tokens, maxLength is 128/,
    );
  });
});

describe('stats and report', () => {
  it('count rows, tokens, learned tokens and lengths', () => {
    const s = ds.stats();
    let tokens = 0;
    let learned = 0;
    let maxPrompt = 0;
    for (let i = 0; i < ds.size; i++) {
      const ex = ds.example(i);
      tokens += ex.inputIds.length;
      learned += ex.labels.filter((l) => l !== IGNORE_INDEX).length;
      maxPrompt = Math.max(maxPrompt, ex.promptLength);
    }
    expect(s).toMatchObject({ examples: ds.size, tokens, learnedTokens: learned });
    expect(s.prompt.max).toBe(maxPrompt);
    expect(s.response.max).toBeGreaterThanOrEqual(s.response.mean);
    expect(s.total.mean).toBeCloseTo(s.prompt.mean + s.response.mean, 9);
    expect(ds.report).toMatchObject({ source: seedPath, format: 'array', rows: 175 });
    expect(ds.report.skipped.total + ds.size).toBe(175);
  });

  it('skipInvalid counts what it skipped per reason; the load fails without it', async () => {
    const d = await loadAlpaca(fixture('mixed.json'), { tokenizer, skipInvalid: true });
    expect(d.size).toBe(2);
    expect(d.report.rows).toBe(8);
    expect(d.report.skipped.total).toBe(6);
    expect(d.report.skipped.byReason).toEqual({
      'not-object': 1,
      'missing-field': 1,
      'not-string': 2,
      'empty-field': 1,
      'malformed-json': 1,
    });
    expect(d.report.skipped.first[0]).toMatch(
      /mixed\.json: row 2 \(line 3\): a row must be an object, got string/,
    );
    await expect(loadAlpaca(fixture('mixed.json'), { tokenizer })).rejects.toThrow(AlpacaRowError);
  });

  it('reports extra fields, the JSONL format, progress; in-memory rows are validated too', async () => {
    const e = await loadAlpaca(fixture('extra-fields.json'), { tokenizer });
    expect(e.report.extraFields).toEqual({ source: 2, category: 1 });
    const progress: LoadProgress[] = [];
    const j = await loadAlpaca(defaultAlpacaPath('seed_tasks.jsonl'), {
      tokenizer,
      chunkSize: 32768,
      onProgress: (p) => progress.push(p),
    });
    expect(j.report.format).toBe('jsonl');
    expect(progress.at(-1)).toMatchObject({
      rows: 175,
      examples: j.size,
      bytesRead: progress.at(-1)?.totalBytes,
    });
    expect(progress.length).toBeGreaterThan(2);
    const m = await loadAlpaca([{ instruction: 'a', input: '', output: 'b' }], { tokenizer });
    expect(m.size).toBe(1);
    await expect(
      loadAlpaca(
        [
          { instruction: 'a', output: 'b' },
          { instruction: 'a', output: 3 },
        ],
        { tokenizer, name: 'mine' },
      ),
    ).rejects.toThrow('mine: row 2: "output" must be a string, got number');
    await expect(loadAlpaca([], { tokenizer })).rejects.toThrow(FormatError);
  });
});

describe('padded batches', () => {
  it('right-pad with eosId (no pad token), mask pads in attention and labels', () => {
    const [b] = run(ds, { batchSize: 5, shuffle: false });
    const T = Math.max(...[0, 1, 2, 3, 4].map((i) => ds.example(i).inputIds.length));
    expect(b.inputIds.map((r) => r.length)).toEqual([T, T, T, T, T]);
    expect(b.segmentIds).toBeUndefined();
    for (let k = 0; k < 5; k++) {
      const ex = ds.example(k);
      const L = ex.inputIds.length;
      expect(b.inputIds[k]).toEqual([...ex.inputIds, ...new Array(T - L).fill(EOS)]);
      expect(b.labels[k]).toEqual([...ex.labels, ...new Array(T - L).fill(IGNORE_INDEX)]);
      expect(b.attentionMask[k]).toEqual([...new Array(L).fill(1), ...new Array(T - L).fill(0)]);
    }
    expect(b.tokens).toBe(b.attentionMask.flat().filter((m) => m === 1).length);
    const [m] = run(ds, { batchSize: 2, padTo: 'maxLength' });
    expect(m.inputIds[0]).toHaveLength(512);
  });

  it('cover every example once per epoch; the last batch is short unless dropLast', () => {
    const batches = run(ds, { batchSize: 16, seed: 3 });
    expect(batches).toHaveLength(Math.ceil(ds.size / 16));
    expect(ds.batchesPerEpoch({ batchSize: 16 })).toBe(batches.length);
    const seen = rowsOf(batches).map((r) =>
      r.filter((_, j) => j === 0 || r[j] !== EOS || true).join(','),
    );
    expect(seen).toHaveLength(ds.size);
    expect(run(ds, { batchSize: 16, dropLast: true })).toHaveLength(Math.floor(ds.size / 16));
  });
});

describe('packed batches', () => {
  const pack = { batchSize: 4, packing: true, seed: 7 } as const;

  it('segments: ids 1, 2, … per example, 0 on pads; positions restart at 0; -100 at every boundary', async () => {
    for (const d of [
      ds,
      await loadAlpaca(seedPath, { tokenizer, maxLength: 512, trainOnPrompt: true }),
    ]) {
      const order = d.epochOrder(0, { seed: 7 });
      let next = 0;
      for (const b of run(d, pack)) {
        for (let r = 0; r < b.inputIds.length; r++) {
          const ids = b.inputIds[r];
          expect(ids).toHaveLength(512);
          let j = 0;
          for (let seg = 1; j < 512 && b.segmentIds![r][j] !== 0; seg++) {
            const ex = d.example(order[next++]);
            const L = ex.inputIds.length;
            expect(ids.slice(j, j + L)).toEqual(ex.inputIds);
            expect(b.labels[r].slice(j, j + L)).toEqual(ex.labels);
            expect(b.labels[r][j]).toBe(IGNORE_INDEX); // nothing predicts an example's first token
            expect(b.segmentIds![r].slice(j, j + L)).toEqual(new Array(L).fill(seg));
            expect(b.positionIds![r].slice(j, j + L)).toEqual([...Array(L).keys()]);
            expect(b.attentionMask[r].slice(j, j + L)).toEqual(new Array(L).fill(1));
            j += L;
          }
          // the tail is padding: pad id, label -100, mask 0, segment 0
          expect(ids.slice(j).every((t) => t === EOS)).toBe(true);
          expect(b.labels[r].slice(j).every((t) => t === IGNORE_INDEX)).toBe(true);
          expect(b.attentionMask[r].slice(j).every((t) => t === 0)).toBe(true);
          expect(b.segmentIds![r].slice(j).every((t) => t === 0)).toBe(true);
        }
      }
      expect(next).toBe(d.size); // every example once per epoch, none split
    }
  });

  it('fill rows greedily: the next example does not fit in the row before it', () => {
    const order = ds.epochOrder(0, { seed: 7 });
    const len = (k: number) => ds.example(order[k]).inputIds.length;
    let k = 0;
    for (const b of run(ds, pack)) {
      for (let r = 0; r < b.inputIds.length; r++) {
        const used = b.attentionMask[r].reduce((a, m) => a + m, 0);
        let sum = 0;
        while (k < ds.size && sum + len(k) <= 512 && sum + len(k) <= used) sum += len(k++);
        expect(sum).toBe(used);
        if (k < ds.size) expect(used + len(k)).toBeGreaterThan(512);
      }
    }
    expect(ds.batchesPerEpoch(pack)).toBe(run(ds, pack).length);
  });
});

describe('shuffling, epochs and resume', () => {
  it('the same seed gives the same order, another seed another, each epoch its own', () => {
    const a = rowsOf(run(ds, { batchSize: 8, seed: 1 }));
    expect(rowsOf(run(ds, { batchSize: 8, seed: 1 }))).toEqual(a);
    expect(rowsOf(run(ds, { batchSize: 8, seed: 2 }))).not.toEqual(a);
    const o0 = ds.epochOrder(0, { seed: 1 });
    const o1 = ds.epochOrder(1, { seed: 1 });
    expect([...o0]).not.toEqual([...o1]);
    expect([...o0].sort((x, y) => x - y)).toEqual([...Array(ds.size).keys()]);
    expect([...ds.epochOrder(0, { shuffle: false })]).toEqual([...Array(ds.size).keys()]);
    expect(run(ds, { batchSize: 8, seed: 1, epochs: 3 })).toHaveLength(3 * Math.ceil(ds.size / 8));
  });

  const modes: [string, BatchOptions][] = [
    ['padded', { batchSize: 8, seed: 11, epochs: 2 }],
    ['padded, dropLast', { batchSize: 8, seed: 11, epochs: 2, dropLast: true }],
    ['packed', { batchSize: 3, packing: true, seed: 11, epochs: 2 }],
  ];
  for (const [name, opts] of modes) {
    it(`${name}: resuming from a serialised position gives the batches of an uninterrupted run`, () => {
      const all = run(ds, opts);
      const perEpoch = ds.batchesPerEpoch(opts);
      for (const k of [1, 5, perEpoch - 1, perEpoch, perEpoch + 2]) {
        const stored = JSON.parse(JSON.stringify(all[k - 1].position));
        const rest = run(ds, { ...opts, resume: stored });
        expect(rest).toEqual(all.slice(k));
      }
      expect(all[perEpoch - 1].position).toEqual({ epoch: 1, offset: 0, seed: 11 });
      expect(all.at(-1)?.position).toEqual({ epoch: 2, offset: 0, seed: 11 });
    });
  }

  it('rejects a position that does not fit', () => {
    expect(() =>
      run(ds, { batchSize: 2, resume: { epoch: 0, offset: ds.size + 1, seed: 0 } }),
    ).toThrow(InvalidArgumentError);
    expect(() =>
      run(ds, { batchSize: 2, seed: 5, resume: { epoch: 0, offset: 0, seed: 4 } }),
    ).toThrow(/seed 5/);
  });
});

describe('split', () => {
  it('is seeded, disjoint and complete', () => {
    const a = ds.split({ validation: 0.1, seed: 1 });
    expect(a.validation.size).toBe(Math.round(ds.size * 0.1));
    expect(a.train.size + a.validation.size).toBe(ds.size);
    const key = (d: AlpacaDataset) => [...Array(d.size).keys()].map((i) => d.example(i).row);
    const rows = new Set([...key(a.train), ...key(a.validation)]);
    expect(rows.size).toBe(ds.size);
    expect(key(ds.split({ validation: 0.1, seed: 1 }).validation)).toEqual(key(a.validation));
    expect(key(ds.split({ validation: 0.1, seed: 2 }).validation)).not.toEqual(key(a.validation));
    expect(ds.split({ validation: 7 }).validation.size).toBe(7);
    expect(() => ds.split({ validation: ds.size })).toThrow(InvalidArgumentError);
    expect(a.train.report).toBe(ds.report);
  });
});
