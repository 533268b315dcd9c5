// Throughput of @edkm/alpaca on one core: streaming parse + validation of an Alpaca file, the full
// load (parse + template + tokenize with the shipped model's tokenizer), and batch assembly.
// Usage: tsx alpaca.ts [--data PATH (default data/alpaca/alpaca_seed.json)] [--reps 5]
//                      [--max-length 512] [--batch 8] [--chunk 65536]
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { defaultAlpacaPath, loadAlpaca, readAlpacaRows } from '@edkm/alpaca';
import { Tokenizer, defaultModelDir } from '@edkm/llama';
import { argNumber, argValue, median, printJson } from './util';

const path = argValue('data') ?? defaultAlpacaPath();
const reps = argNumber('reps', 5);
const maxLength = argNumber('max-length', 512);
const batchSize = argNumber('batch', 8);
const chunkSize = argNumber('chunk', 65536);
const bytes = statSync(path).size;

const modelDir = defaultModelDir();
const json = (f: string) => JSON.parse(readFileSync(join(modelDir, f), 'utf8'));
const tokenizer = new Tokenizer(json('tokenizer.json'), json('tokenizer_config.json'));

/** Seconds of each of `reps` runs after one warm-up. */
async function time(fn: () => Promise<unknown> | unknown): Promise<number[]> {
  await fn();
  const seconds: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await fn();
    seconds.push((performance.now() - t0) / 1000);
  }
  return seconds;
}

let rows = 0;
const parseSeconds = await time(async () => {
  rows = 0;
  for await (const _ of readAlpacaRows(path, { chunkSize })) rows++;
});

let dataset = await loadAlpaca(path, { tokenizer, maxLength, chunkSize });
const loadSeconds = await time(async () => {
  dataset = await loadAlpaca(path, { tokenizer, maxLength, chunkSize });
});
const stats = dataset.stats();

/** One epoch of batches → tokens (non-pad) and positions (pads included) per second. */
async function batching(packing: boolean) {
  let tokens = 0;
  let positions = 0;
  let batches = 0;
  const seconds = await time(() => {
    tokens = positions = batches = 0;
    for (const b of dataset.batches({ batchSize, packing, seed: 1 })) {
      tokens += b.tokens;
      positions += b.inputIds.length * b.inputIds[0].length;
      batches++;
    }
  });
  return {
    batches,
    tokensPerSec: Math.round(tokens / median(seconds)),
    fillRatio: +(tokens / positions).toFixed(3),
    medianMs: +(median(seconds) * 1000).toFixed(2),
  };
}

printJson({
  bench: 'alpaca',
  data: path,
  bytes,
  rows,
  reps,
  maxLength,
  parse: {
    rowsPerSec: Math.round(rows / median(parseSeconds)),
    mbPerSec: +(bytes / 2 ** 20 / median(parseSeconds)).toFixed(1),
    medianMs: +(median(parseSeconds) * 1000).toFixed(2),
  },
  loadAndTokenize: {
    rowsPerSec: Math.round(dataset.report.rows / median(loadSeconds)),
    tokensPerSec: Math.round(stats.tokens / median(loadSeconds)),
    medianMs: +(median(loadSeconds) * 1000).toFixed(2),
    bestMs: +(Math.min(...loadSeconds) * 1000).toFixed(2),
  },
  batchesPerEpoch: {
    batchSize,
    padded: await batching(false),
    packed: await batching(true),
  },
  stats,
  skipped: dataset.report.skipped.byReason,
});
