// Tokens/s of training (forward + backward) and of greedy generation for the shipped model.
// Usage: tsx llama.ts [--backend cpu|webgpu] [--batch 4] [--seq 128] [--steps 3] [--new 64]
import '@edkm/backend-cpu';
import '@edkm/backend-webgpu';
import { tf, useBackend } from '@edkm/core';
import { defaultModelDir, generate, loadLlama } from '@edkm/llama';
import { argNumber, argValue, median, printJson } from './util';

const selection = await useBackend(argValue('backend') ?? 'auto');
const batch = argNumber('batch', 4);
const seq = argNumber('seq', 128);
const steps = argNumber('steps', 3);
const newTokens = argNumber('new', 64);
const { model, tokenizer } = loadLlama(argValue('model') ?? defaultModelDir());
const ids = Array.from({ length: batch }, (_, b) =>
  Array.from({ length: seq }, (_, t) => 3 + ((b * 131 + t * 17) % 4000)),
);

const trainTimes: number[] = [];
for (let s = 0; s <= steps; s++) {
  const t0 = performance.now();
  const { value, grads } = tf.variableGrads(() => model.loss(ids, ids), model.trainableVariables);
  await value.data();
  await Promise.all(
    Object.values(grads).map((g) =>
      g.slice(new Array(g.rank).fill(0), new Array(g.rank).fill(1)).data(),
    ),
  );
  tf.dispose([value, ...Object.values(grads)]);
  if (s > 0) trainTimes.push(performance.now() - t0); // the first step compiles
}
const prompt = tokenizer.encode('Once upon a time');
await generate(model, prompt, { maxNewTokens: 4, eosIds: [] });
const g0 = performance.now();
const generated = await generate(model, prompt, { maxNewTokens: newTokens, eosIds: [] });
const genSeconds = (performance.now() - g0) / 1000;
printJson({
  bench: 'llama',
  backend: selection.description,
  model: 'edkm-tiny',
  training: {
    batch,
    seq,
    stepMs: median(trainTimes),
    tokensPerSecond: (batch * seq) / (median(trainTimes) / 1000),
  },
  generation: { newTokens: generated.length, tokensPerSecond: generated.length / genSeconds },
});
