// @edkm/eval throughput on the shipped model: examples/s of every multiple-choice task on its
// fixture / shipped set (first --limit documents) and tokens/s of sliding-window perplexity.
// Usage: tsx eval.ts [--backend cpu|webgpu] [--limit 16] [--batch 8] [--ppl-chars 4000]
//                    [--window 256] [--stride 128] [--model ../models/edkm-tiny]
import '@edkm/backend-cpu';
import '@edkm/backend-webgpu';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { useBackend } from '@edkm/core';
import { type McTaskName, evaluate, fromLlama, perplexity } from '@edkm/eval';
import { loadLlama } from '@edkm/llama';
import { argNumber, argValue, printJson } from './util';

const root = fileURLToPath(new URL('..', import.meta.url));
const selection = await useBackend(argValue('backend') ?? 'cpu');
const limit = argNumber('limit', 16);
const batchSize = argNumber('batch', 8);
const modelDir = argValue('model') ?? `${root}models/edkm-tiny`;
const fixtures = `${root}packages/eval/test/fixtures`;

const t0 = performance.now();
const model = fromLlama(await loadLlama(modelDir));
const loadSeconds = (performance.now() - t0) / 1000;

// warm-up: the first passes compile kernels (shaders on WebGPU)
await perplexity(model, 'ROMEO:\nBut soft, what light through yonder window breaks?', {
  window: 16,
});

const tasks: [McTaskName, string][] = [
  ['piqa', `${fixtures}/piqa/valid.jsonl`],
  ['winogrande', `${fixtures}/winogrande/dev.jsonl`],
  ['arc_easy', `${fixtures}/arc/arc-easy-hf.jsonl`],
  ['arc_challenge', `${fixtures}/arc/ARC-Challenge-Dev.jsonl`],
  ['hellaswag', `${fixtures}/hellaswag/hellaswag_val.jsonl`],
  ['boolq', `${fixtures}/boolq/dev.jsonl`],
  ['multiple_choice', `${root}data/eval/shakespeare-next-line.jsonl`],
  ['multiple_choice', `${root}data/eval/alpaca-mc.jsonl`],
];
const rows: Record<string, unknown>[] = [];
for (const [task, dataPath] of tasks) {
  const r = await evaluate({ model, task, dataPath, limit, batchSize });
  rows.push({
    task,
    data: dataPath.slice(root.length),
    n: r.n,
    requests: r.requests,
    forwardSequences: r.forwardSequences,
    seconds: +r.seconds.toFixed(3),
    examplesPerSec: +(r.n / r.seconds).toFixed(2),
    acc: r.acc,
    ...(r.acc_norm !== undefined ? { acc_norm: r.acc_norm } : {}),
  });
}

const window = argNumber('window', 256);
const stride = argNumber('stride', 128);
const text = readFileSync(`${root}data/eval/shakespeare-val.txt`, 'utf8').slice(
  0,
  argNumber('ppl-chars', 4000),
);
const p = await perplexity(model, text, { window, stride, batchSize });

printJson({
  bench: 'eval',
  backend: selection.plugin,
  device: selection.description,
  model: modelDir.slice(root.length),
  limit,
  batchSize,
  loadSeconds: +loadSeconds.toFixed(2),
  tasks: rows,
  ppl: {
    data: 'data/eval/shakespeare-val.txt',
    chars: text.length,
    window,
    stride,
    tokens: p.tokens,
    scoredTokens: p.scoredTokens,
    windows: p.windows,
    ppl: +p.ppl.toFixed(3),
    seconds: +p.seconds.toFixed(3),
    tokensPerSec: +(p.scoredTokens / p.seconds).toFixed(1),
  },
});
