// One LLaMA-7B-shaped decoder layer (hidden 4096, 32 heads of 128, MLP 11008; random weights,
// float32), forward + backward over 2048 tokens: gradients of every weight and of the input, as
// training computes them. The PyTorch twin is bench/torch/torch_layer7b.py.
// Usage: tsx layer7b.ts [--backend webgpu] [--tokens 2048] [--batch 1] [--iters 5] [--profile]
//        [--no-graph] [--hidden 4096 --heads 32 --kv-heads 32 --intermediate 11008] (smaller shapes)
// Where the backend can record (webgpu), the step also runs as a recorded device graph (core's
// captureGraph, as training replays its steps): `graphMs` beside the op-by-op `fwdBwdMs`, and with
// --profile the GPU time of each kernel of one replay (DeviceGraph.profile).
import '@edkm/backend-cpu';
import { resetWebGPUHostStats, webgpuHostStats } from '@edkm/backend-webgpu';
import { captureGraph, makeResident, tf, useBackend } from '@edkm/core';
import { type LlamaConfig, decoderLayer, ropeTables, rotateHalfMatrix } from '@edkm/llama';
import { ropeInverseFrequencies } from '@edkm/llama';
import { argNumber, argValue, median, printJson, sync } from './util';

const selection = await useBackend(argValue('backend') ?? 'auto');
const batch = argNumber('batch', 1);
const T = argNumber('tokens', 2048) / batch;
const iters = argNumber('iters', 5);
const hidden = argNumber('hidden', 4096);
const heads = argNumber('heads', 32);
const config: LlamaConfig = {
  hiddenSize: hidden,
  intermediateSize: argNumber('intermediate', 11008),
  numHiddenLayers: 1,
  numAttentionHeads: heads,
  numKeyValueHeads: argNumber('kv-heads', heads),
  headDim: hidden / heads,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  ropeScaling: { type: 'default' },
  maxPositionEmbeddings: 4096,
  tieWordEmbeddings: false,
  vocabSize: 32000,
};
const c = config;
const kvDim = c.numKeyValueHeads * c.headDim;
const shapes: Record<string, [number, number]> = {
  q: [hidden, hidden],
  k: [kvDim, hidden],
  v: [kvDim, hidden],
  o: [hidden, hidden],
  gate: [c.intermediateSize, hidden],
  up: [c.intermediateSize, hidden],
  down: [hidden, c.intermediateSize],
};
const weights = new Map<string, tf.Variable>();
for (const [name, shape] of Object.entries(shapes))
  weights.set(name, tf.variable(tf.randomNormal(shape, 0, 0.02, 'float32', weights.size + 1)));
const inputNorm = tf.variable(tf.ones([hidden]));
const postNorm = tf.variable(tf.ones([hidden]));
const x = tf.variable(tf.randomNormal([batch, T, hidden], 0, 1, 'float32', 99));
const dy = tf.randomNormal([batch, T, hidden], 0, 1, 'float32', 100);
const positions = tf.range(0, T, 1, 'int32').expandDims(0).tile([batch, 1]) as tf.Tensor2D;
const [cos, sin] = ropeTables(positions, ropeInverseFrequencies(config));
const maskValues = new Float32Array(T * T);
for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) maskValues[i * T + j] = -1e9;
const mask = tf.tensor4d(maskValues, [1, 1, T, T]);
const rotateHalf = rotateHalfMatrix(c.headDim);
const vars = [...weights.values(), inputNorm, postNorm, x];

/** Forward + backward of the layer: the loss Σ(y·dy) makes dy the upstream gradient. */
function step(): tf.Tensor[] {
  const { value, grads } = tf.variableGrads(() => {
    const out = decoderLayer(
      x,
      {
        inputNorm,
        postNorm,
        project: (a, which) => tf.matMul(a, weights.get(which)!, false, true),
      },
      { config, B: batch, T, cos, sin, mask, rotateHalf },
    );
    return tf.sum(tf.mul(out.x, dy)) as tf.Scalar;
  }, vars);
  value.dispose();
  return Object.values(grads);
}

const webgpu = selection.tfjsBackend === 'webgpu';
const times: number[] = [];
let profile: object | undefined;
for (let i = 0; i <= iters; i++) {
  if (webgpu) resetWebGPUHostStats();
  const t0 = performance.now();
  const grads = step();
  const hostMs = performance.now() - t0;
  await Promise.all(grads.map((g) => sync(g)));
  const ms = performance.now() - t0;
  tf.dispose(grads);
  if (i === 0) continue; // compiles
  times.push(ms);
  if (webgpu && process.argv.includes('--profile')) {
    const st = webgpuHostStats();
    profile = { hostMs, ...st };
  }
}
// the same step recorded once and replayed (its inputs made device-resident first: an op whose
// inputs all hold host values runs on the host in tfjs-webgpu and would be replayed as recorded)
let graphMs: number | undefined;
let graphTimes: number[] | undefined;
let kernels: object | undefined;
if (!process.argv.includes('--no-graph')) {
  for (const t of [...vars, dy, cos, sin, mask, rotateHalf]) makeResident(t as tf.Tensor);
  let grads: tf.Tensor[] = [];
  // a one-element result of the step to wait on (reading a gradient would time a 64 MB read-back)
  let done: tf.Tensor | undefined;
  const graph = captureGraph(() => {
    grads = step();
    done = tf.slice(grads[grads.length - 1], [0, 0, 0], [1, 1, 1]);
  });
  if (graph) {
    graphTimes = [];
    for (let i = 0; i <= iters; i++) {
      const t0 = performance.now();
      graph.run();
      await graph.read(done!);
      if (i > 0) graphTimes.push(performance.now() - t0);
    }
    graphMs = median(graphTimes);
    if (process.argv.includes('--profile')) kernels = await graph.profile?.();
    graph.dispose();
  }
  tf.dispose([...grads, ...(done ? [done] : [])]);
}
const flops =
  // 2·tokens·params for the forward matmuls, twice that for the backward
  3 * 2 * batch * T * Object.values(shapes).reduce((a, [o, i]) => a + o * i, 0);
const attnFlops = 3 * 2 * 2 * batch * c.numAttentionHeads * T * T * c.headDim;
const ms = median(times);
printJson({
  bench: 'layer7b',
  backend: selection.description,
  shape: { batch, tokensPerSequence: T, ...config },
  fwdBwdMs: ms,
  times,
  graphMs,
  graphTimes,
  graphTflops: graphMs ? (flops + attnFlops) / (graphMs / 1000) / 1e12 : undefined,
  tflops: (flops + attnFlops) / (ms / 1000) / 1e12,
  profile,
  kernels,
});
