// Real scale (issue 22): on a made LLaMA-shape folder (`edkm make-model --preset llama-2-7b`),
// 1. loads it once and reports the host's peak RSS above the baseline (the loader streams tensor
//    by tensor), 2. fine-tunes N steps of eDKM (all decoder linears, default 3 bits) with
//    gradient checkpointing per layer, reporting step time, tokens/s and peak device memory,
//    3. writes the palettized export from memory, reloads it into the Decoder (as `edkm generate`
//    does: LUTs and packed indices on the device) and generates 16 greedy tokens, reporting the
//    export's size and the resident bytes. Prints one JSON object.
// Usage: tsx scale.ts --model DIR [--steps 20] [--batch 1] [--seq 512] [--bits 3] [--backend webgpu]
//   [--device-memory 139GiB] [--work /tmp/edkm-scale] [--data FILE] [--no-checkpointing] [--new 16]
//   [--skip-load-check] (skips step 1: a 7B-shaped load takes about a minute)
import '@edkm/backend-cpu';
import '@edkm/backend-webgpu';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { backendBytes, tf, useBackend } from '@edkm/core';
import { Decoder, loadLlama, readLlamaFolder } from '@edkm/llama';
import { decoderSource } from '@edkm/palettized';
import { finetune } from '../apps/edkm/src/finetune';
import { parseBytes } from '../apps/edkm/src/memory-plan';
import { progressBar } from '../apps/edkm/src/progress';
import { argNumber, argValue, median, printJson } from './util';

const modelDir = argValue('model');
if (!modelDir || !existsSync(join(modelDir, 'config.json')))
  throw new Error('--model DIR (a Hugging Face folder, e.g. from edkm make-model) is required');
const steps = argNumber('steps', 20);
const batch = argNumber('batch', 1);
const seq = argNumber('seq', 512);
const bits = argNumber('bits', 3);
const newTokens = argNumber('new', 16);
const checkpointing = !process.argv.includes('--no-checkpointing');
const loadCheck = !process.argv.includes('--skip-load-check');
const work = resolve(argValue('work') ?? '/tmp/edkm-scale');
const data = resolve(
  argValue('data') ?? join(import.meta.dirname, '../data/tinyshakespeare/input.txt'),
);
const selection = await useBackend(argValue('backend') ?? 'webgpu');
const log = (s: string) => process.stderr.write(`${s}\n`);

/** VmRSS and VmHWM (the peak since the last reset) of this process, in bytes. */
function rss(): { now: number; peak: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
  return { now: kb('VmRSS'), peak: kb('VmHWM') };
}

// 1. streaming load: peak host RSS above the baseline
const resetPeak = () => {
  try {
    writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM to the current RSS
    return true;
  } catch {
    return false;
  }
};
const peakReset = resetPeak();
const baseline = rss();
let t0 = performance.now();
let load: Record<string, unknown> = { skipped: true };
let config = readLlamaFolder(modelDir).config;
let parameters = 0;
if (loadCheck) {
  const loaded = loadLlama(modelDir);
  await loaded.model.getWeights().get('model.norm.weight')!.data(); // the uploads are done
  const loadSeconds = (performance.now() - t0) / 1000;
  const afterLoad = rss();
  parameters = [...loaded.model.getWeights().values()].reduce((a, w) => a + w.size, 0);
  config = loaded.config;
  load = {
    seconds: loadSeconds,
    hostRssBaselineBytes: baseline.now,
    hostRssPeakAboveBaselineBytes: afterLoad.peak - baseline.now,
    peakResetWorked: peakReset,
    deviceBytesAfterLoad: backendBytes(),
  };
  loaded.model.dispose();
  log(
    `loaded ${parameters} parameters in ${loadSeconds.toFixed(1)} s; host RSS peak ${((afterLoad.peak - baseline.now) / 2 ** 30).toFixed(2)} GiB above the baseline`,
  );
}

// 2. fine-tune
rmSync(work, { recursive: true, force: true });
const runDir = join(work, 'run');
const exportDir = join(work, 'export');
t0 = performance.now();
const result = await finetune(
  {
    model: modelDir,
    data,
    out: runDir,
    palettize: { global: { bits }, byName: { 'lm_head.weight': null } },
    steps,
    batch,
    seq,
    gradAccum: 1,
    lr: 1e-5,
    warmup: 2,
    minLrRatio: 0.1,
    weightDecay: 0,
    clip: 1,
    seed: 0,
    saveEvery: 0,
    holdoutChars: 0,
    packing: false,
    trainEmbeddings: false,
    checkpointing: checkpointing || undefined,
    readEvery: 1, // every step's time is logged when it ends
  },
  {
    backend: selection.plugin,
    resume: false,
    progress: progressBar(), // on stderr: a run cut by a time limit shows where it was
    log,
    deviceMemory: argValue('device-memory') ? parseBytes(argValue('device-memory')!) : undefined,
    exportTo: exportDir,
  },
);
const memory = tf.memory() as tf.MemoryInfo & { numBytesAllocatedInGPU?: number };
const stepLines = readFileSync(join(runDir, 'log.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l))
  .filter((l) => l.event === 'step');
const stepSeconds = stepLines.map((l, i) => l.seconds - (i ? stepLines[i - 1].seconds : 0));
const steady = stepSeconds.slice(1); // the first step compiles the kernels
const stepTime = steady.length ? median(steady) : stepSeconds[0];

// 3. reload the export as `edkm generate` runs it (the Decoder: LUTs and packed indices on the
// device, no dense copy of a palettized weight), generate greedily
t0 = performance.now();
const { config: exported, tokenizer } = readLlamaFolder(exportDir);
const source = decoderSource(exportDir);
const prompt = tokenizer.encode('ROMEO:');
const decoder = new Decoder(exported, source, { maxLength: prompt.length + newTokens });
source.close();
const reloadSeconds = (performance.now() - t0) / 1000;
const residentBytes = decoder.memory();
await decoder.generate([prompt], { maxNewTokens: 2, eosIds: [] }); // compiles the kernels
t0 = performance.now();
const [ids] = await decoder.generate([prompt], { maxNewTokens: newTokens, eosIds: [] });
const genSeconds = (performance.now() - t0) / 1000;
decoder.dispose();
const exportBytes = statSync(join(exportDir, 'model.safetensors')).size;

printJson({
  bench: 'scale',
  backend: selection.description,
  model: {
    dir: modelDir,
    parameters: loadCheck ? parameters : undefined, // counted by the load check
    layers: config.numHiddenLayers,
    hidden: config.hiddenSize,
    intermediate: config.intermediateSize,
    vocab: config.vocabSize,
  },
  load,
  finetune: {
    steps,
    batch,
    seq,
    bits,
    palettizedLinears: config.numHiddenLayers * 7,
    checkpointing,
    stepSecondsMedian: stepTime,
    stepSeconds,
    tokensPerSecondSteady: (batch * seq) / stepTime,
    tokensPerSecondOverall: result.tokensPerSecond,
    finalLoss: result.finalLoss,
    peakDeviceBytes: result.peakBytes,
    peakDeviceGiB: result.peakBytes / 2 ** 30,
    deviceBytesAllocatedAfter: memory.numBytesAllocatedInGPU,
    totalSeconds: result.seconds,
  },
  export: {
    bytes: exportBytes,
    GB: exportBytes / 1e9,
    report: result.exportReport,
    reloadSeconds,
    residentBytes,
  },
  generate: {
    newTokens,
    seconds: genSeconds,
    tokensPerSecond: newTokens / genSeconds,
    ids,
  },
});
