// "LLM in a flash" on the shipped model: the FFN stays on disk and is read on demand. For FFN
// memory budgets of 100, 50 and 25% it measures bytes and reads per generated token and tokens/s of
// naive loading (whole layers per token when they do not fit), windowing (predicted neurons,
// matrices stored apart) and windowing + bundling (one read per neuron), with the page cache
// bypassed (O_DIRECT) and dropped between runs when allowed; then the quality cost of sparse
// selection (perplexity, greedy agreement). Run after `pnpm build`:
//   cd bench && pnpm exec tsx flash.ts [--tokens 32] [--topk 0.25] [--window 4] [--rank 32]
//     [--train-tokens 4096] [--quality-chars 3000] [--no-direct] [--predictor file]
import '@edkm/backend-cpu';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededRandom, useBackend } from '@edkm/core';
import { fromLogitsFn, perplexityOfTokens } from '@edkm/eval';
import {
  type FlashOptions,
  type FlashStats,
  NVME_SSD,
  type PredictorSpec,
  RangeReader,
  type StorageDevice,
  openFlash,
  readSeconds,
  trainPredictor,
  writeFlashLayout,
} from '@edkm/flash';
import { defaultModelDir, generate, loadLlama } from '@edkm/llama';
import { argNumber, argValue, printJson } from './util';

const selection = await useBackend(argValue('backend') ?? 'cpu');
const modelDir = argValue('model') ?? defaultModelDir();
const newTokens = argNumber('tokens', 32);
const topK = argNumber('topk', 0.25);
const window = argNumber('window', 4);
const rank = argNumber('rank', 32);
const trainTokens = argNumber('train-tokens', 4096);
const qualityChars = argNumber('quality-chars', 3000);
const direct = !process.argv.includes('--no-direct');
const root = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'edkm-flash-bench-'));

const bundled = join(work, 'bundled');
const matrix = join(work, 'matrix');
const layout = writeFlashLayout(modelDir, bundled);
writeFlashLayout(modelDir, matrix, { bundling: 'matrix' });

// the predictor: trained on tinyshakespeare without its last 20,000 characters (the eval text)
const shakespeare = readFileSync(join(root, 'data/tinyshakespeare/input.txt'), 'utf8');
let training: object = { path: argValue('predictor') };
if (argValue('predictor'))
  copyFileSync(argValue('predictor')!, join(bundled, 'predictor.safetensors'));
else {
  const t = await trainPredictor(bundled, shakespeare.slice(0, 200_000), {
    rank,
    maxTokens: trainTokens,
    qualityTopK: topK,
  });
  const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
  training = {
    rank,
    tokens: t.tokens,
    seconds: t.seconds,
    heldOutRecallAtTopK: mean(t.quality.recall),
    heldOutMassCaptured: mean(t.quality.massCaptured),
  };
}
copyFileSync(join(bundled, 'predictor.safetensors'), join(matrix, 'predictor.safetensors'));

/** Empties the OS page cache (root only); says whether it could. */
function dropPageCache(): boolean {
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

const tokenizer = loadLlama(modelDir).tokenizer;
const prompt = tokenizer.encode('ROMEO:\nWhat light through yonder window breaks?');
let dropped = false;

/** Stats of the generated tokens after the first (the prompt's forward is left out). */
async function decode(dir: string, opts: FlashOptions): Promise<FlashStats> {
  dropped = dropPageCache() || dropped;
  const flash = await openFlash(dir, { direct, ...opts });
  let first = true;
  await flash.generate(prompt, {
    maxNewTokens: newTokens,
    eosIds: [],
    onToken: () => {
      if (first) flash.resetStats();
      first = false;
    },
  });
  const stats = flash.stats();
  await flash.close();
  return stats;
}

/** This machine's disk through O_DIRECT: random 4 KiB reads one by one and 4 at once, 1 MiB reads. */
async function measureDisk(path: string): Promise<StorageDevice> {
  dropPageCache();
  const reader = await RangeReader.open(path, { direct });
  const blocks = Math.floor(statSync(path).size / 4096);
  const random = seededRandom(7);
  const block = () => ({ offset: Math.floor(random() * blocks) * 4096, length: 4096 });
  const time = async (f: () => Promise<void>) => {
    const t0 = performance.now();
    await f();
    return (performance.now() - t0) / 1000;
  };
  const n = 200;
  const one = await time(async () => {
    for (let i = 0; i < n; i++) (await reader.read([block()])).release();
  });
  const batch = Array.from({ length: n }, block)
    .sort((a, b) => a.offset - b.offset)
    .filter((r, i, a) => i === 0 || r.offset !== a[i - 1].offset);
  const together = await time(async () => {
    (await reader.read(batch)).release();
  });
  const mib = 1 << 20;
  const sequential = await time(async () => {
    for (let at = 0; at + mib <= blocks * 4096; at += mib)
      (await reader.read([{ offset: at, length: mib }])).release();
  });
  await reader.close();
  return {
    readLatencySeconds: one / n,
    parallelReads: one / n / (together / batch.length),
    bytesPerSecond: (Math.floor((blocks * 4096) / mib) * mib) / sequential,
  };
}
const thisDisk = await measureDisk(join(bundled, 'ffn.flash'));

const sparse: PredictorSpec = { kind: 'low-rank', topK };
const methods: [string, string, FlashOptions][] = [
  ['naive', bundled, { strategy: 'naive' }],
  [`windowing (k=${window})`, matrix, { predictor: sparse, window }],
  [`windowing (k=${window}) + bundling`, bundled, { predictor: sparse, window }],
  [
    `windowing (k=${window}) + bundling, reads merged over gaps ≤ 64 KiB`,
    bundled,
    { predictor: sparse, window, mergeGapBytes: 1 << 16 },
  ],
  [
    'least-recently-used (k=∞) + bundling',
    bundled,
    { predictor: sparse, window: Number.POSITIVE_INFINITY },
  ],
];
const runs = [];
for (const budget of ['100%', '50%', '25%'] as const)
  for (const [method, dir, opts] of methods) {
    const s = await decode(dir, { ...opts, memoryBudget: budget });
    runs.push({
      budget,
      method,
      memoryFractionOfModel: round(s.memory.fractionOfModel),
      bytesReadPerToken: Math.round(s.bytesReadPerToken),
      neededBytesPerToken: Math.round(s.neededBytes / s.tokens),
      readsPerToken: round(s.readsPerToken),
      meanReadBytes: Math.round(s.meanReadBytes),
      tokensPerSecond: round(s.tokensPerSecond),
      ioWaitMsPerToken: round((1000 * s.ioWaitSeconds) / s.tokens),
      cacheHitRate: round(s.hitRate),
      modelledMsPerToken: {
        nvme: round((1000 * readSeconds(s.reads, s.bytesRead, NVME_SSD)) / s.tokens),
        thisDisk: round((1000 * readSeconds(s.reads, s.bytesRead, thisDisk)) / s.tokens),
      },
    });
  }

const { model } = loadLlama(modelDir);
let firstTokenAt = 0;
const denseIds = await generate(model, prompt, {
  maxNewTokens: newTokens,
  eosIds: [],
  onToken: () => {
    firstTokenAt ||= performance.now();
  },
});
const denseTokensPerSecond = (denseIds.length - 1) / ((performance.now() - firstTokenAt) / 1000);
model.dispose();

// quality: sparse selection against every neuron (windowing and budgets do not change outputs)
const quality = [];
if (qualityChars > 0) {
  const val = readFileSync(join(root, 'data/eval/shakespeare-val.txt'), 'utf8').slice(
    0,
    qualityChars,
  );
  const prompts = ['ROMEO:\nWhat light', 'First Citizen:\nWe are', 'KING HENRY:\nNow'];
  const specs: [string, PredictorSpec][] = [
    ['all', 'all'],
    ...[0.5, 0.25].flatMap((k): [string, PredictorSpec][] => [
      [`oracle top-${k}`, { kind: 'oracle', topK: k }],
      [`low-rank r=${rank} top-${k}`, { kind: 'low-rank', topK: k }],
    ]),
  ];
  let reference: number[][] = [];
  for (const [name, predictor] of specs) {
    const flash = await openFlash(bundled, { predictor });
    const tok = flash.tokenizer!;
    const scoring = fromLogitsFn({
      logits: (ids) => flash.logits(ids),
      encode: (t, o) => tok.encode(t, o),
      maxLength: flash.config.maxPositionEmbeddings,
    });
    const ppl = await perplexityOfTokens(scoring, tok.encode(val), { window: 64, stride: 64 });
    const gens: number[][] = [];
    for (const p of prompts)
      gens.push(await flash.generate(tok.encode(p), { maxNewTokens: 32, eosIds: [] }));
    if (name === 'all') reference = gens;
    let same = 0;
    let prefix = 0;
    gens.forEach((g, i) => {
      let j = 0;
      while (j < g.length && g[j] === reference[i][j]) j++;
      prefix += j;
      same += g.filter((id, k) => id === reference[i][k]).length;
    });
    const total = gens.reduce((s, g) => s + g.length, 0);
    quality.push({
      predictor: name,
      perplexity: round(ppl.ppl),
      nll: round(ppl.nll),
      scoredTokens: ppl.scoredTokens,
      greedySameTokenRate: round(same / total),
      greedyCommonPrefixRate: round(prefix / total),
    });
    await flash.close();
  }
}
rmSync(work, { recursive: true, force: true });

printJson({
  bench: 'flash',
  backend: selection.description,
  model: 'edkm-tiny',
  pageCache: direct
    ? `bypassed: O_DIRECT reads of 4 KiB-aligned blocks${dropped ? '; caches dropped before each run' : ''}`
    : dropped
      ? 'dropped before each run, then warm within a run'
      : 'warm (not bypassed)',
  layout: {
    ffnBytes: layout.ffnBytes,
    residentBytes: layout.residentBytes,
    neuronBundleBytes: layout.manifest.neuronBytes,
    budgetsAre:
      'percent of the FFN bytes (the part on disk); memoryFractionOfModel adds the resident part',
  },
  settings: { newTokens, promptTokens: prompt.length, topK, window, direct },
  predictor: training,
  costModel: { nvme: NVME_SSD, thisDisk },
  dense: { tokensPerSecond: round(denseTokensPerSecond), generated: denseIds.length },
  runs,
  quality: {
    text: `first ${qualityChars} characters of data/eval/shakespeare-val.txt, window 64`,
    results: quality,
  },
});

function round(x: number): number {
  return Number(x.toFixed(4));
}
