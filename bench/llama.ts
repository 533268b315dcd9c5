// Tokens/s of training (forward + backward + gradient clip + AdamW, as the app trains) and of
// greedy generation for the shipped model.
// Usage: tsx llama.ts [--backend cpu|wasm|webgpu|auto] [--batch 8] [--seq 256] [--steps 5] [--new 64]
//        [--optimizer adamw|none] [--bits N] [--profile] [--no-generate]
// --profile adds, per training step, what the WebGPU backend did on the host (dispatches,
// submits, uniform writes, bind groups, read-backs, uploads, host ms to enqueue the step and per
// dispatch) and the GPU kernel time from timestamp queries (null where the adapter has none).
import { AdamW, TrainStep, defaultPalettizeConfig } from '@edkm/app';
import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import { getWebGPUDeviceInfo, resetWebGPUHostStats, webgpuHostStats } from '@edkm/backend-webgpu';
import { tf, useBackend } from '@edkm/core';
import { Palettizer } from '@edkm/dkm';
import { defaultModelDir, generate, loadLlama } from '@edkm/llama';
import { argNumber, argValue, median, printJson } from './util';

const selection = await useBackend(argValue('backend') ?? 'auto');
const batch = argNumber('batch', 8);
const seq = argNumber('seq', 256);
const steps = argNumber('steps', 5);
const newTokens = argNumber('new', 64);
const optimizerName = argValue('optimizer') ?? 'adamw';
const profile = process.argv.includes('--profile');
// --bits N: the decoder linears palettized by eDKM at N bits, prepared every step (the quality
// recipe's step, as the app runs it; hostMs includes the prepare); without it, a 16-bit step
const bits = argValue('bits') === undefined ? undefined : argNumber('bits', 3);
const { model, tokenizer } = loadLlama(argValue('model') ?? defaultModelDir());
const ids = Array.from({ length: batch }, (_, b) =>
  Array.from({ length: seq }, (_, t) => 3 + ((b * 131 + t * 17) % 4000)),
);
const webgpu = selection.tfjsBackend === 'webgpu';

const variables = new Map(model.getWeights());
const names = [...variables.keys()];
const vars = names.map((n) => variables.get(n)!);
const optimizer = optimizerName === 'adamw' ? new AdamW({ weightDecay: 0 }) : undefined;
// the app's default config: every decoder linear at `bits`, the LM head 16-bit
const palettizer =
  bits === undefined
    ? undefined
    : new Palettizer(
        new Map(
          model.linearWeightNames().map((n) => [n, variables.get(n)!.shape as [number, number]]),
        ),
        defaultPalettizeConfig(bits),
      );
if (palettizer) model.setLinear(palettizer.linear);

const graphOn = !process.argv.includes('--no-graph') && optimizer !== undefined;
const stepper = optimizer
  ? new TrainStep(model, variables, optimizer, {
      clip: 1.0,
      graph: graphOn,
      log: (line) => console.error(line),
      palettizer,
    })
  : undefined;
// tf.time below times programs op by op: a replayed graph has none
const eagerStepper = optimizer
  ? new TrainStep(model, variables, optimizer, { clip: 1.0, graph: false })
  : undefined;
const batch0 = { inputIds: ids, labels: ids, tokens: batch * seq };

/**
 * One training step as the app runs it, queued without any read-back: loss, gradients, the global
 * norm clipped at 1.0 on the device, AdamW. Returns the loss (still on the device).
 */
async function step(eager = false): Promise<tf.Scalar> {
  const s = eager ? eagerStepper : stepper;
  if (s) {
    // the palettized layers are prepared by the step (on the device where it is recorded)
    const { losses, clip } = await s.run([batch0], 1e-4);
    clip.dispose();
    return losses[0];
  }
  // --optimizer none: the forward and backward passes only
  await palettizer?.prepare(variables);
  const { value, grads } = tf.variableGrads(() => model.loss(ids, ids), vars);
  tf.dispose(Object.values(grads));
  return value;
}

const trainTimes: number[] = [];
const profiles: object[] = [];
for (let s = 0; s <= steps; s++) {
  if (webgpu) resetWebGPUHostStats();
  const t0 = performance.now();
  const loss = await step();
  const hostMs = performance.now() - t0;
  await loss.data();
  loss.dispose();
  const ms = performance.now() - t0;
  if (s === 0) continue; // the first step compiles
  trainTimes.push(ms);
  if (profile && webgpu) {
    const st = webgpuHostStats();
    const top = Object.entries(st.byProgram)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12);
    profiles.push({
      stepMs: ms,
      hostMs,
      dispatches: st.dispatches,
      hostMsPerDispatch: hostMs / Math.max(1, st.dispatches),
      submits: st.submits,
      uniformWrites: st.uniformWrites,
      bindGroups: st.bindGroups,
      readbacks: st.readbacks,
      readbackBytes: st.readbackBytes,
      uploads: st.uploads,
      uploadBytes: st.uploadBytes,
      topPrograms: Object.fromEntries(top),
    });
  }
}

// GPU kernel time of one step from timestamp queries: tf.time times every program on its own
// (one pass each), so this step is measured apart from the timed ones above
let gpuKernelMs: number | null = null;
if (profile && webgpu && getWebGPUDeviceInfo()?.features.includes('timestamp-query')) {
  await palettizer?.prepare(variables);
  // without a palettizer of its own, the op-by-op step queues all its work synchronously
  let pending: Promise<tf.Scalar> | undefined;
  const info = await tf.time(() => {
    pending = step(true);
  });
  (await pending!).dispose();
  gpuKernelMs = info.kernelMs as number;
}

// the recorded step replayed once more with every kernel timed (GPU µs per kernel name)
const graphProfile =
  profile && stepper?.recorded ? await stepper.profileStep([batch0], 1e-4) : undefined;

let generation: object | undefined;
if (!process.argv.includes('--no-generate')) {
  const prompt = tokenizer.encode('Once upon a time');
  await generate(model, prompt, { maxNewTokens: 4, eosIds: [] });
  const g0 = performance.now();
  const generated = await generate(model, prompt, { maxNewTokens: newTokens, eosIds: [] });
  const genSeconds = (performance.now() - g0) / 1000;
  generation = { newTokens: generated.length, tokensPerSecond: generated.length / genSeconds };
}
printJson({
  bench: 'llama',
  backend: selection.description,
  model: 'edkm-tiny',
  training: {
    batch,
    seq,
    optimizer: optimizerName,
    palettized: bits === undefined ? null : `eDKM ${bits}-bit, ${palettizer?.layers.size} linears`,
    graph: stepper?.recorded ?? false,
    replayedSteps: stepper?.replays ?? 0,
    stepMs: median(trainTimes),
    tokensPerSecond: (batch * seq) / (median(trainTimes) / 1000),
  },
  ...(profile
    ? {
        profile: {
          note: 'per training step (forward, backward, clip, AdamW, loss read); hostMs: time to queue the step; gpuKernelMs: one step, tfjs programs summed from timestamp queries, the plugin kernels not included (null without timestamp-query)',
          gpuKernelMs,
          graph: graphProfile && {
            note: 'one replay of the recorded step, each dispatch in its own timed pass',
            dispatches: graphProfile.dispatches,
            gpuMs: graphProfile.gpuMicroseconds / 1000,
            topKernels: graphProfile.byKernel.slice(0, 20),
          },
          steps: profiles,
        },
      }
    : {}),
  generation,
});
