// Decoding at the memory-bandwidth limit: prefill and decode tokens/s of the Decoder (weights read
// straight from LUTs + packed indices, or bf16), bytes read per token, achieved GB/s against the
// device's measured copy bandwidth and against a kernel streaming device memory (the roof; on the
// CPU half the copy's read + write), resident memory. Models: edkm-tiny 16-bit (the shipped bf16
// weights), edkm-tiny 3-bit (a per-tensor 3-bit palettization of them, made here), and a
// Llama-2-7B-shaped 3-bit model with random LUTs and packed indices generated directly (no dense
// weights ever exist; bf16 embeddings and LM head).
// Usage: tsx generate.ts [--backend webgpu|cpu] [--models tiny16,tiny3,7b3] [--batch 1]
//        [--prompt 32] [--new 128] [--max-length 512] [--temperature T --top-k K --top-p P]
//        [--layers 32] (the 7B shape's layer count, for a quick smoke run)
//        [--no-graph] (every step op by op through tfjs, not replayed as a recorded device graph)
//        [--prefill-modes exact,w8a8] (prefill only, models tiny3, tiny16, 7b3, 7b16: one forward pass of --prompt tokens per mode,
//        the same decoder; w8a8 = palettized products on int8 tensor cores, EDKM_WEBGPU_UNSAFE=1)
import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getWebGPUDeviceInfo, resetWebGPUHostStats, webgpuHostStats } from '@edkm/backend-webgpu';
import { packIndices } from '@edkm/codec';
import {
  captureGraph,
  flushBackend,
  fromHalfBits,
  paletteWeightHost,
  tf,
  toHalfBits,
  useBackend,
} from '@edkm/core';
import {
  Decoder,
  type DecoderSource,
  type LlamaConfig,
  defaultModelDir,
  parseLlamaConfig,
  safetensorsSource,
} from '@edkm/llama';
import { randomBf16, randomPalette } from './random-weights';
import { copyBufferBandwidth, streamReadBandwidth } from './stream-read';
import { argNumber, argValue, median, printJson } from './util';

const backendName = argValue('backend') ?? 'webgpu';
const selection = await useBackend(backendName);
const onGpu = selection.tfjsBackend === 'webgpu';
const models = (argValue('models') ?? (onGpu ? 'tiny16,tiny3,7b3' : 'tiny16,tiny3')).split(',');
const batch = argNumber('batch', 1);
const promptLength = argNumber('prompt', 32);
const newTokens = argNumber('new', 128);
const maxLength = argNumber('max-length', 512);
const temperature = argValue('temperature');
const graph = !process.argv.includes('--no-graph');
const sampling = temperature
  ? {
      temperature: Number(temperature),
      topK: argNumber('top-k', 0) || undefined,
      topP: argNumber('top-p', 1),
      seed: 1,
    }
  : {};

function llama7bSource(bits: number): { config: LlamaConfig; source: DecoderSource } {
  const config = parseLlamaConfig({
    hidden_size: 4096,
    intermediate_size: 11008,
    num_hidden_layers: argNumber('layers', 32),
    num_attention_heads: 32,
    num_key_value_heads: 32,
    vocab_size: 32000,
    max_position_embeddings: 4096,
    rms_norm_eps: 1e-5,
    bos_token_id: 1,
    eos_token_id: 2,
  });
  let seed = 1;
  const shapes: Record<string, [number, number]> = {
    q_proj: [4096, 4096],
    k_proj: [4096, 4096],
    v_proj: [4096, 4096],
    o_proj: [4096, 4096],
    gate_proj: [11008, 4096],
    up_proj: [11008, 4096],
    down_proj: [4096, 11008],
  };
  return {
    config,
    source: {
      matrix(name) {
        seed++;
        if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight')
          return randomBf16(32000, 4096, seed);
        const m = /\.(\w+_proj)\.weight$/.exec(name);
        if (!m) throw new Error(`no weight ${name}`);
        // (16: bf16 projections, the 16-bit model's shape)
        return bits === 16
          ? randomBf16(...shapes[m[1]], seed)
          : randomPalette(...shapes[m[1]], bits, seed);
      },
      vector: () => new Float32Array(4096).fill(1),
    },
  };
}

/** The shipped model with every projection palettized per tensor at `bits` (LUT at quantiles). */
function tinyConfig(): LlamaConfig {
  return parseLlamaConfig(JSON.parse(readFileSync(join(defaultModelDir(), 'config.json'), 'utf8')));
}

function tinyPalettized(bits: number): { config: LlamaConfig; source: DecoderSource } {
  const dir = defaultModelDir();
  const config = tinyConfig();
  const dense = safetensorsSource(dir);
  const source: DecoderSource = {
    matrix(name) {
      const w = dense.matrix(name);
      if (!name.endsWith('_proj.weight') || w.format !== 'bf16') return w;
      const data = fromHalfBits(w.bits, 'bf16');
      const sorted = Float32Array.from(data).sort();
      const k = 2 ** bits;
      const lut = Float32Array.from(
        { length: k },
        (_, i) => sorted[Math.floor(((i + 0.5) / k) * sorted.length)],
      );
      const indices = new Uint8Array(data.length);
      for (let i = 0; i < data.length; i++) {
        let best = 0;
        for (let c = 1; c < k; c++)
          if (Math.abs(data[i] - lut[c]) < Math.abs(data[i] - lut[best])) best = c;
        indices[i] = best;
      }
      return {
        format: 'palette',
        palette: paletteWeightHost({
          shape: w.shape,
          bits,
          clusterDim: 1,
          packed: packIndices(indices, bits),
          lut: toHalfBits(lut, 'fp16'),
          groupRows: [w.shape[0]],
        }),
      };
    },
    vector: (name) => dense.vector(name),
  };
  return { config, source };
}

/** Device copy bandwidth (bytes read + written per second) of a 256 MiB buffer copy. */
async function copyBandwidth(): Promise<number> {
  if (onGpu)
    return copyBufferBandwidth((tf.backend() as unknown as { device: GPUDevice }).device, 256, 20);
  const size = 64 * 2 ** 20;
  const a = new Float32Array(size / 4).fill(1);
  const b = new Float32Array(size / 4);
  const times: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < 4; i++) (i % 2 ? a : b).set(i % 2 ? b : a);
    times.push((performance.now() - t0) / 1000);
  }
  return (2 * size * 4) / median(times);
}

async function measure(name: string, config: LlamaConfig, source: DecoderSource, copy: number) {
  const t0 = performance.now();
  const decoder = new Decoder(config, source, { batch, maxLength });
  const loadSeconds = (performance.now() - t0) / 1000;
  const memory = decoder.memory();
  const prompts = Array.from({ length: batch }, (_, b) =>
    Array.from(
      { length: promptLength },
      (_, t) => 3 + ((b * 131 + t * 17) % (config.vocabSize - 3)),
    ),
  );
  // warm-up: compiles every pipeline (prefill tiles and the decode step)
  await decoder.generate(prompts, { maxNewTokens: 4, eosIds: [], graph, ...sampling });
  // tfjs uploads on first use: the device holds everything now (weights, caches, pooled buffers)
  const resident = tf.memory() as tf.MemoryInfo & Record<string, number | undefined>;
  const prefill: number[] = [];
  const ids = tf.tensor1d(Int32Array.from(prompts.flat()), 'int32');
  for (let r = 0; r < 3; r++) {
    decoder.reset();
    const p0 = performance.now();
    const logits = decoder.forward(ids, promptLength);
    await logits.data();
    prefill.push((performance.now() - p0) / 1000);
    logits.dispose();
  }
  ids.dispose();
  flushBackend();
  const runs: { tokens: number; seconds: number }[] = [];
  if (onGpu) resetWebGPUHostStats();
  for (let r = 0; r < 2; r++) {
    const times: number[] = [];
    await decoder.generate(prompts, {
      maxNewTokens: newTokens,
      eosIds: [],
      graph,
      ...sampling,
      onRowToken: (row) => {
        if (row === 0) times.push(performance.now());
      },
    });
    runs.push({ tokens: times.length - 1, seconds: (times[times.length - 1] - times[0]) / 1000 });
  }
  // GPU dispatches per generated token (the prompt's pass spread over the new tokens)
  const host = onGpu ? webgpuHostStats() : undefined;
  const perToken = (n: number | undefined) => (n === undefined ? undefined : n / (2 * newTokens));
  const dispatchesPerToken = perToken(host?.dispatches);
  // host work per token besides the dispatches: new bind groups and uniform writes (cache
  // misses), queue submissions, read-backs
  const hostPerToken = host && {
    bindGroups: perToken(host.bindGroups),
    uniformWrites: perToken(host.uniformWrites),
    submits: perToken(host.submits),
    readbacks: perToken(host.readbacks),
  };
  const best = runs.reduce((a, b) => (b.tokens / b.seconds > a.tokens / a.seconds ? b : a));
  const replayOnly = graph && onGpu ? await replayThroughput(decoder) : undefined;
  const stepsPerSecond = best.tokens / best.seconds;
  // bytes one decode step reads: every weight once (one embedding row), and the KV cache so far
  const c = config;
  const weightsRead =
    memory.weights -
    memory.embedding +
    (memory.embedding / c.vocabSize) * batch +
    (c.tieWordEmbeddings ? memory.embedding : 0);
  const meanPosition = promptLength + newTokens / 2;
  const kvRead = c.numHiddenLayers * 2 * batch * c.numKeyValueHeads * meanPosition * c.headDim * 4;
  const bytesPerStep = weightsRead + kvRead;
  const achieved = bytesPerStep * stepsPerSecond;
  const result = {
    model: name,
    batch,
    promptLength,
    newTokens,
    // one-token steps replayed as a recorded device graph (Decoder.generate's default)
    graph,
    replayedSteps: host?.replays ?? 0,
    loadSeconds,
    prefillTokensPerSecond: (batch * promptLength) / median(prefill),
    decodeTokensPerSecond: batch * stepsPerSecond,
    decodeStepMs: 1000 / stepsPerSecond,
    // the recorded one-token step (forward only) replayed back to back with no read-back between:
    // the device's time a step where the host keeps up, and the host's encoding time a replay
    replayOnly,
    dispatchesPerToken,
    hostPerToken,
    bytesPerToken: bytesPerStep / batch,
    weightBytesPerStep: weightsRead,
    kvBytesPerStep: kvRead,
    achievedGBps: achieved / 1e9,
    copyGBps: copy / 1e9,
    fractionOfCopyBandwidth: achieved / copy,
    // the roof: a kernel streaming device memory (copyBufferToBuffer is far below it on the H200)
    streamReadGBps: streamRead / 1e9,
    fractionOfStreamRead: achieved / streamRead,
    resident: {
      weightBytes: memory.weights,
      kvCacheBytes: memory.cache,
      weightGB: memory.weights / 1e9,
      deviceBytes: resident.numBytesAllocatedInGPU ?? resident.numBytesInGPU ?? resident.numBytes,
    },
  };
  decoder.dispose();
  return result;
}

/**
 * The decode step's forward pass recorded once (at the decoder's current position, on the device)
 * and replayed `reps` times back to back, one read-back at the end: ms a step on the device where
 * the host keeps up, and the host's ms to encode and submit one replay.
 */
async function replayThroughput(decoder: Decoder, reps = 64) {
  const ids = tf.tensor1d(
    Array.from({ length: batch }, () => 5),
    'int32',
  );
  const position = tf.tensor1d([decoder.position], 'int32');
  let out: tf.Tensor2D | undefined;
  const graph = captureGraph(() => {
    out = decoder.forward(ids, 1, position);
  });
  if (!graph || !out) {
    tf.dispose([ids, position, out].filter((t) => t !== undefined));
    return undefined;
  }
  const logits = out;
  await graph.read(logits);
  const time = async (n: number) => {
    const t0 = performance.now();
    let host = 0;
    for (let i = 0; i < n; i++) {
      const h0 = performance.now();
      graph.run();
      host += performance.now() - h0;
    }
    await graph.read(logits);
    return { ms: performance.now() - t0, host };
  };
  await time(4);
  // the slope between two counts: the read-back's cost cancels
  const [a, b] = [await time(reps / 4), await time(reps)];
  const dispatches = graph.dispatches;
  graph.dispose();
  tf.dispose([ids, position, logits]);
  return { stepMs: (b.ms - a.ms) / (reps - reps / 4), hostEncodeMs: b.host / reps, dispatches };
}

/** Prefill only: one pass over the prompt per mode on one decoder (median of 3 after a warm-up). */
async function measurePrefill(name: string, config: LlamaConfig, source: DecoderSource) {
  const decoder = new Decoder(config, source, {
    batch,
    maxLength: Math.max(maxLength, promptLength),
  });
  const ids = tf.tensor1d(
    Int32Array.from(
      { length: batch * promptLength },
      (_, i) => 3 + ((i * 17) % (config.vocabSize - 3)),
    ),
    'int32',
  );
  const modes: Record<string, { ms: number; tokensPerSecond: number }> = {};
  for (const mode of prefillModes as ('exact' | 'w8a8')[]) {
    decoder.prefill = mode;
    const times: number[] = [];
    for (let r = 0; r < 4; r++) {
      decoder.reset();
      const p0 = performance.now();
      const logits = decoder.forward(ids, promptLength);
      await logits.data();
      logits.dispose();
      if (r > 0) times.push((performance.now() - p0) / 1000);
    }
    const s = median(times);
    modes[mode] = { ms: s * 1000, tokensPerSecond: (batch * promptLength) / s };
  }
  ids.dispose();
  decoder.dispose();
  const speedup =
    modes.exact && modes.w8a8
      ? modes.w8a8.tokensPerSecond / modes.exact.tokensPerSecond
      : undefined;
  return { model: name, batch, promptLength, modes, speedup };
}

const prefillModes = argValue('prefill-modes')?.split(',');
if (prefillModes) {
  const results = [];
  for (const m of models) {
    const sources: Record<string, () => { config: LlamaConfig; source: DecoderSource }> = {
      '7b3': () => llama7bSource(3),
      '7b16': () => llama7bSource(16),
      tiny3: () => tinyPalettized(3),
      tiny16: () => ({ config: tinyConfig(), source: safetensorsSource(defaultModelDir()) }),
    };
    if (!sources[m]) throw new Error(`--prefill-modes: tiny3, tiny16, 7b3 or 7b16, not ${m}`);
    const { config, source } = sources[m]();
    results.push(await measurePrefill(m, config, source));
  }
  printJson({ bench: 'prefill', backend: selection.description, results });
  process.exit(0);
}

const copy = await copyBandwidth();
const streamRead = onGpu
  ? await streamReadBandwidth(
      (tf.backend() as unknown as { device: GPUDevice }).device,
      getWebGPUDeviceInfo()?.software ? 32 : 512, // MiB (a software adapter reads slowly)
    )
  : copy / 2;
const results = [];
for (const m of models) {
  if (m === 'tiny16') {
    const source = safetensorsSource(defaultModelDir());
    results.push(await measure('edkm-tiny 16-bit (bf16)', tinyConfig(), source, copy));
    source.close();
  } else if (m === 'tiny3') {
    const { config, source } = tinyPalettized(3);
    results.push(await measure('edkm-tiny 3-bit (per-tensor LUT)', config, source, copy));
  } else if (m === '7b3') {
    const { config, source } = llama7bSource(3);
    results.push(
      await measure(
        'Llama-2-7B-shaped 3-bit (random LUTs/indices, bf16 embed/head)',
        config,
        source,
        copy,
      ),
    );
  } else throw new Error(`unknown model ${m} (tiny16, tiny3, 7b3)`);
}
printJson({
  bench: 'generate',
  backend: selection.description,
  // Dawn's robustness (EDKM_WEBGPU_ROBUST=0 turns it off: ~15% faster 7B-shaped decode on an H200)
  robust: getWebGPUDeviceInfo()?.robust ?? null,
  sampling: temperature ? sampling : 'greedy',
  results,
});
