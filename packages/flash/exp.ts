import '@edkm/backend-cpu';
import { readFileSync } from 'node:fs';
import { useBackend } from '@edkm/core';
import { fromLogitsFn, perplexityOfTokens } from '@edkm/eval';
import {
  type PredictorSpec,
  collectFfnInputs,
  fitLowRankPredictor,
  openFlash,
  predictorQuality,
} from './src/index';
await useBackend('cpu');
const dir = '/tmp/flash-tiny';
const text = readFileSync('../../data/tinyshakespeare/input.txt', 'utf8');
const train = text.slice(0, text.length - 20000);
if (process.argv[2] !== 'eval') {
  const flash = await openFlash(dir);
  const ids = flash.tokenizer!.encode(train.slice(0, 100000));
  let t = performance.now();
  const acts = await collectFfnInputs(flash, ids, { maxTokens: 8192 });
  console.log('collect s', (performance.now() - t) / 1000, acts.tokens);
  for (const target of ['gate-up', 'gate'] as const)
    for (const rank of [32, 64]) {
      t = performance.now();
      const p = fitLowRankPredictor(flash.layout, acts, { rank, target });
      const fitS = (performance.now() - t) / 1000;
      for (const k of [0.5, 0.25]) {
        const q = predictorQuality(flash.layout, p, acts, k);
        console.log(
          target,
          rank,
          k,
          'fit s',
          fitS.toFixed(1),
          JSON.stringify({
            recall: q.recall.map((r) => +r.toFixed(3)),
            mass: q.massCaptured.map((r) => +r.toFixed(3)),
          }),
        );
      }
      p.save(`${dir}/pred-${target}-r${rank}.safetensors`);
      p.dispose();
    }
  await flash.close();
  process.exit(0);
}
const val = readFileSync('../../data/eval/shakespeare-val.txt', 'utf8').slice(0, 3000);
const prompts = ['ROMEO:\nWhat light', 'First Citizen:\nWe are', 'KING HENRY:\nNow'];
let reference: number[][] = [];
const specs: [string, PredictorSpec][] = [['all', 'all']];
for (const k of [0.5, 0.25]) {
  specs.push([`oracle ${k}`, { kind: 'oracle', topK: k }]);
  for (const p of ['gate-up-r32', 'gate-up-r64', 'gate-r32', 'gate-r64'])
    specs.push([`${p} ${k}`, { kind: 'low-rank', path: `${dir}/pred-${p}.safetensors`, topK: k }]);
}
for (const [name, predictor] of specs) {
  const flash = await openFlash(dir, { predictor });
  const tok = flash.tokenizer!;
  const model = fromLogitsFn({
    logits: (ids) => flash.logits(ids),
    encode: (t, o) => tok.encode(t, o),
    maxLength: 1024,
  });
  const ppl = await perplexityOfTokens(model, tok.encode(val), { window: 64, stride: 64 });
  const gens: number[][] = [];
  for (const p of prompts)
    gens.push(await flash.generate(tok.encode(p), { maxNewTokens: 24, eosIds: [] }));
  if (name === 'all') reference = gens;
  let agree = 0;
  let total = 0;
  let prefix = 0;
  gens.forEach((g, i) => {
    let j = 0;
    while (j < g.length && g[j] === reference[i][j]) j++;
    prefix += j;
    g.forEach((x, jj) => {
      agree += x === reference[i][jj] ? 1 : 0;
    });
    total += g.length;
  });
  console.log(
    name,
    JSON.stringify({
      ppl: +ppl.ppl.toFixed(3),
      nll: +ppl.nll.toFixed(4),
      tokens: ppl.scoredTokens,
      prefixAgreement: prefix / total,
      s: ppl.seconds.toFixed(1),
    }),
  );
  await flash.close();
}
