// Where a decode step's time goes: each op of one Llama-2-7B-shaped decoder layer (3-bit
// palettized linears, batch 1, one new position) and the bf16 LM head, run many times in a row
// with one read-back at the end (the slope between two counts: the read-back's cost cancels), so
// that a GPU-bound op shows its kernel time and a host-bound one its dispatch cost
// (bench/dispatch.ts measures that alone). Prints one JSON object:
// microseconds per op, the bytes each reads and the GB/s that implies.
// Usage: tsx decode-ops.ts [--reps 50] [--pos 160] [--bits 3] [--hidden 4096 --intermediate 11008
//   --heads 32 --kv-heads 32 --vocab 32000] [--max-length 1024]
import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import { getWebGPUDeviceInfo } from '@edkm/backend-webgpu';
import {
  type DecodeAttrs,
  type PackedWeight,
  cachedAttention,
  canCaptureGraph,
  captureGraph,
  kvWrite,
  kvWriteAttention,
  packedMatMul,
  rmsNormRows,
  ropeTable,
  siluMul,
  tf,
  uploadHostWeight,
  useBackend,
} from '@edkm/core';
import { randomBf16, randomPalette } from './random-weights';
import { argNumber, argValue, printJson } from './util';

const reps = argNumber('reps', 50);
const pos = argNumber('pos', 160);
const bits = argNumber('bits', 3);
const H = argNumber('hidden', 4096);
const I = argNumber('intermediate', 11008);
const heads = argNumber('heads', 32);
const kvHeads = argNumber('kv-heads', heads);
const vocab = argNumber('vocab', 32000);
const D = H / heads;
// (the 7B-shaped generate's cache: its replayed steps read the position from the device, so the
// attention's grid covers all maxLength slots)
const maxLength = Math.max(argNumber('max-length', 1024), pos + 1);
const selection = await useBackend(argValue('backend') ?? 'webgpu');
const timestamps = getWebGPUDeviceInfo()?.features.includes('timestamp-query') ?? false;

const palette = (n: number, k: number, seed: number) =>
  uploadHostWeight(randomPalette(n, k, bits, seed));
const weights = {
  qkv: palette(H + 2 * kvHeads * D, H, 1),
  o: palette(H, H, 2),
  gateUp: palette(2 * I, H, 3),
  down: palette(H, I, 4),
  head: uploadHostWeight(randomBf16(vocab, H, 5)),
};
const bytesOf = (n: number, k: number, b: number) => (n * k * b) / 8;
const x = tf.randomNormal([1, H]) as tf.Tensor2D;
const h = tf.randomNormal([1, I]) as tf.Tensor2D;
const gu = tf.randomNormal([1, 2 * I]) as tf.Tensor2D;
const g = tf.ones([H]) as tf.Tensor1D;
const qkv = tf.randomNormal([1, H + 2 * kvHeads * D]) as tf.Tensor2D;
const cache = tf.randomNormal([2, 1, kvHeads, maxLength, D]);
const invFreq = Float32Array.from({ length: D / 2 }, (_, i) => 10000 ** ((-2 * i) / D));
const rope = tf.tensor2d(ropeTable(maxLength, invFreq), [maxLength, D]);
const starts = tf.zeros([1], 'int32') as tf.Tensor1D;
const attrs: DecodeAttrs = { heads, kvHeads, pos };
const position = tf.tensor1d([pos], 'int32') as tf.Tensor1D;
const rms = { rmsNorm: { weight: g, eps: 1e-5 } };

let hostMs = 0;
/** Milliseconds for n runs of f in a row and one read-back of the last output (hostMs: the loop alone). */
async function run(f: () => tf.Tensor, n: number): Promise<number> {
  const t0 = performance.now();
  let last: tf.Tensor | undefined;
  for (let i = 0; i < n; i++) {
    last?.dispose();
    last = f();
  }
  hostMs = performance.now() - t0;
  await last!.data();
  last!.dispose();
  return performance.now() - t0;
}

/**
 * The op's GPU time alone, from timestamp queries (tf.time's kernelMs; the median of 7), where
 * the device has them; Dawn quantizes timestamps unless EDKM_DAWN_FLAGS has
 * `disable-dawn-features=timestamp_quantization`.
 */
async function gpuMicroseconds(f: () => tf.Tensor): Promise<number | null> {
  if (!timestamps) return null;
  // recorded and profiled where the backend can (DeviceGraph.profile times every dispatch, the
  // plugin's raw kernels too; tf.time only sees tfjs's own programs)
  if (canCaptureGraph()) {
    let out: tf.Tensor | undefined;
    const graph = captureGraph(() => {
      out = f();
    });
    if (graph?.profile) {
      const us: number[] = [];
      for (let i = 0; i < 7; i++) us.push((await graph.profile())?.gpuMicroseconds ?? Number.NaN);
      graph.dispose();
      out?.dispose();
      us.sort((a, b) => a - b);
      return us[3];
    }
    graph?.dispose();
    out?.dispose();
  }
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    let out: tf.Tensor | undefined;
    const info = await tf.time(() => {
      out = f();
    });
    out?.dispose();
    times.push((info.kernelMs as number) * 1000);
  }
  times.sort((a, b) => a - b);
  return times[3];
}

/**
 * Microseconds per op: the slope between `reps` and 5·`reps` runs, so that the fixed cost of the
 * one read-back (and of its output's size: kv write returns the whole cache) cancels out.
 */
async function time(
  f: () => tf.Tensor,
): Promise<{ us: number; fixedMs: number; hostUs: number; gpuUs: number | null }> {
  await run(f, 2); // compiles
  const short = await run(f, reps);
  const long = await run(f, 5 * reps);
  const hostUs = (hostMs * 1000) / (5 * reps);
  const us = ((long - short) * 1000) / (4 * reps);
  return { us, fixedMs: short - (us * reps) / 1000, hostUs, gpuUs: await gpuMicroseconds(f) };
}

const ops: { op: string; f: () => tf.Tensor; bytes: number }[] = [
  {
    op: 'qkv (rmsnorm fused)',
    f: () => packedMatMul(x, weights.qkv, rms),
    bytes: bytesOf(3 * H, H, bits),
  },
  {
    op: 'qkv (no prologue)',
    f: () => packedMatMul(x, weights.qkv),
    bytes: bytesOf(3 * H, H, bits),
  },
  { op: 'kv write', f: () => kvWrite(cache, qkv, rope, starts, attrs), bytes: 2 * kvHeads * D * 4 },
  {
    op: `attention (${pos + 1} positions)`,
    f: () => cachedAttention(qkv, cache, rope, starts, attrs),
    bytes: 2 * kvHeads * (pos + 1) * D * 4,
  },
  {
    op: `attention (${pos + 1} positions, device position, ${maxLength} slots)`,
    f: () => cachedAttention(qkv, cache, rope, starts, { ...attrs, pos: 0 }, position),
    bytes: 2 * kvHeads * (pos + 1) * D * 4,
  },
  {
    op: `kv write + attention (device position, ${maxLength} slots: one kernel where fused)`,
    f: () => kvWriteAttention(cache, qkv, rope, starts, { ...attrs, pos: 0 }, position),
    bytes: 2 * kvHeads * (pos + 2) * D * 4,
  },
  {
    op: 'o (residual fused)',
    f: () => packedMatMul(x, weights.o, { residual: x }),
    bytes: bytesOf(H, H, bits),
  },
  {
    op: 'gate-up (rmsnorm fused)',
    f: () => packedMatMul(x, weights.gateUp, rms),
    bytes: bytesOf(2 * I, H, bits),
  },
  { op: 'silu·mul', f: () => siluMul(gu), bytes: 3 * I * 4 },
  {
    op: 'down (residual fused)',
    f: () => packedMatMul(h, weights.down, { residual: x }),
    bytes: bytesOf(H, I, bits),
  },
  {
    // what the decoder runs: silu(gate) · up from gate-up's output computed in the product's prologue
    op: 'down (swiglu + residual fused)',
    f: () => packedMatMul(gu, weights.down, { swiglu: true, residual: x }),
    bytes: bytesOf(H, I, bits),
  },
  { op: 'final rmsnorm', f: () => rmsNormRows(x, g, 1e-5), bytes: H * 8 },
  { op: 'LM head (bf16)', f: () => packedMatMul(x, weights.head), bytes: vocab * H * 2 },
];
const rows: {
  op: string;
  microseconds: number;
  bytes: number;
  GBps: number;
  readbackMs: number;
  /** Host time to enqueue one op (the loop without its read-back). */
  hostMicroseconds: number;
  /** GPU time of the op's kernels alone (timestamp queries), null without them. */
  gpuMicroseconds: number | null;
}[] = [];
for (const { op, f, bytes } of ops) {
  const { us, fixedMs, hostUs, gpuUs } = await time(f);
  rows.push({
    op,
    microseconds: us,
    bytes,
    GBps: bytes / us / 1e3,
    readbackMs: fixedMs,
    hostMicroseconds: hostUs,
    gpuMicroseconds: gpuUs,
  });
}
// the decoder's layer: RMSNorm·QKV, the fused KV write + attention, O, RMSNorm·gate-up, SwiGLU·down
const layerOps = rows.filter((r) =>
  /^(qkv \(rmsnorm|kv write \+ attention|o \(|gate-up|down \(swiglu)/.test(r.op),
);
const layerUs = layerOps.reduce((a, r) => a + r.microseconds, 0);
const headUs = rows.filter((r) => /final|head/.test(r.op)).reduce((a, r) => a + r.microseconds, 0);
printJson({
  bench: 'decode-ops',
  backend: selection.description,
  dawnFlags: process.env.EDKM_DAWN_FLAGS ?? '',
  // the decode GEMV's switches (EDKM_PALETTE_GEMV, EDKM_GEMV_*: tile, LUT, prefetch, grid)
  gemv: Object.fromEntries(
    Object.entries(process.env).filter(([k]) => /^EDKM_(PALETTE_GEMV|GEMV_)/.test(k)),
  ),
  shape: { hidden: H, intermediate: I, heads, kvHeads, vocab, bits, pos, reps },
  ops: rows,
  layerMicroseconds: layerUs,
  // a 32-layer step estimated from the ops (the Decoder's real step adds embedding and sampling)
  stepMillisecondsFor32Layers: (32 * layerUs + headUs) / 1000,
});
