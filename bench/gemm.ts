// f32 GEMM speed on WebGPU: the plugin's GEMM against tfjs-webgpu's stock matmul, per shape and
// transposed form, and its largest error against a float64 reference on small shapes.
// Usage: tsx gemm.ts [--sweep] [--tiles 8x8x16x16x16,4x4x16x16x16r,...] [--shapes 4096x4096x4096,...]
//        [--forms NN,NT,TN,TT] [--reps 5] [--busy-ms 300] [--round-ms 60] [--no-stock] [--small]
// A tile is TMxTNxWXxWYxBK (threads WX·WY, output tile (WY·TM)×(WX·TN)), `r` for a rolled K loop,
// `g8` for workgroups in groups of 8 tile rows (L2 reuse), `b` for warps of 8×4 thread blocks;
// `/s2` after a tile splits K in two.
// Shapes are MxKxN (C[M,N] = op(A)·op(B)); NT is a linear layer's forward x·Wᵀ, NN its input
// gradient, TN its weight gradient. --sweep runs several tile shapes on the large shapes.
import '@edkm/backend-webgpu';
import {
  type GemmTile,
  chooseGemm,
  gemm,
  gemmTileName,
  getWebGPUDeviceInfo,
  parseGemmTile,
  setMatMulRoute,
} from '@edkm/backend-webgpu';
import { seededRandom, tf, useBackend } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { type Form, argNumber, argValue, gemmSides, printJson, sync, warmUpGpu } from './util';

const LLAMA_SHAPES = ['4096x4096x4096', '2048x4096x4096', '2048x4096x11008', '2048x11008x4096'];
// the weight gradients of a LLaMA-7B layer's linears over 2048 tokens (TN)
const DW_SHAPES = ['4096x2048x4096', '11008x2048x4096', '4096x2048x11008'];
// edkm-tiny (hidden 288, MLP 768) at 8×256 tokens, and its attention (48 heads·batch, head 48)
const SMALL_SHAPES = ['2048x288x288', '2048x288x768', '2048x768x288', '288x2048x768'];
// (the first sweep, gemm-sweep-1.json, also had 8x8x16x16x16r, 8x8x16x8x16, 4x8x16x16x16,
// 8x4x16x16x16 and 8x8x8x8x16: all slower)
const SWEEP_TILES = ['8x8x16x16x8', '8x8x16x16x4', '8x8x16x16x8r', '8x8x16x16x16', '4x4x16x16x16'];

/** A tile name, optionally with `/s<splits>` (split-K into that many chunks). */
interface Choice {
  tile: GemmTile;
  splits?: number;
}
function parseTile(s: string): Choice {
  const [name, split] = s.split('/');
  const tile = parseGemmTile(name);
  const splits = split ? Number(split.replace(/^s/, '')) : undefined;
  if (!tile || (split && !(Number.isInteger(splits) && (splits as number) >= 1)))
    throw new Error(`--tiles: ${s} is not TMxTNxWXxWYxBK[r][g<group>][b][n][/s<splits>]`);
  return { tile, splits };
}
const choiceName = (c: Choice) => `${gemmTileName(c.tile)}${c.splits ? `/s${c.splits}` : ''}`;

const sweep = process.argv.includes('--sweep');
const small = process.argv.includes('--small');
const withStock = !process.argv.includes('--no-stock');
const reps = argNumber('reps', 5);
const tiles: (Choice | undefined)[] = argValue('tiles')
  ? (argValue('tiles') as string).split(',').map(parseTile)
  : sweep
    ? SWEEP_TILES.map(parseTile)
    : [undefined]; // undefined: the kernel's own choice
const shapes = argValue('shapes')
  ? (argValue('shapes') as string).split(',')
  : small
    ? SMALL_SHAPES
    : [...LLAMA_SHAPES, ...DW_SHAPES];
const forms = (argValue('forms') ?? 'NN,NT,TN,TT').split(',') as Form[];

const selection = await useBackend('webgpu');
const gpu = tf.backend() as WebGPUBackend;

function operands(m: number, k: number, n: number, form: Form) {
  const a = tf.randomUniform(form[0] === 'T' ? [k, m] : [m, k], -1, 1, 'float32', 1);
  const b = tf.randomUniform(form[1] === 'T' ? [n, k] : [k, n], -1, 1, 'float32', 2);
  return { a, b, tA: form[0] === 'T', tB: form[1] === 'T' };
}

/**
 * Median over 5 rounds of the milliseconds of one product in back-to-back runs. Before them the
 * product runs for `busyMs` (the first run compiles the shader; the rest bring the GPU's clocks
 * up: the operands of each shape are made on the host while the GPU idles, and the first product
 * measured after that ran at a third of its speed on the H200, bench/results/h200-2026-12-03/
 * gemm-f32-s4-2.json). Each round has at least `reps` runs and at least `roundMs` of them, so
 * that the one-element read-back ending a round (a fraction of a millisecond) is a small share.
 */
const busyMs = argNumber('busy-ms', 300);
const roundMs = argNumber('round-ms', 60);
async function time(run: () => tf.Tensor): Promise<number> {
  const t0 = performance.now();
  let runs = 0;
  while (runs < 2 || performance.now() - t0 < busyMs) {
    const warm = run();
    await sync(warm);
    warm.dispose();
    runs++;
  }
  const each = (performance.now() - t0) / runs;
  const n = Math.max(reps, Math.ceil(roundMs / each));
  const times: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    let last: tf.Tensor | undefined;
    for (let i = 0; i < n; i++) {
      last?.dispose();
      last = run();
    }
    await sync(last as tf.Tensor);
    last?.dispose();
    times.push((performance.now() - t0) / n);
  }
  return times.sort((x, y) => x - y)[2];
}

if (!getWebGPUDeviceInfo()?.software) await warmUpGpu();

const rows: Record<string, unknown>[] = [];
for (const shape of shapes) {
  const [m, k, n] = shape.split('x').map(Number);
  const flop = 2 * m * k * n;
  for (const form of forms) {
    const { a, b, tA, tB } = operands(m, k, n, form);
    await sync(a);
    await sync(b);
    const row: Record<string, unknown> = { shape, form, m, k, n };
    for (const tile of tiles) {
      const key = tile ? choiceName(tile) : 'ours';
      try {
        const ms = await time(() =>
          tf.engine().makeTensorFromTensorInfo(
            gemm(gpu, a, b, {
              transposeA: tA,
              transposeB: tB,
              tile: tile?.tile,
              splits: tile?.splits,
            }),
          ),
        );
        row[key] = { ms: +ms.toFixed(3), tflops: +(flop / ms / 1e9).toFixed(2) };
      } catch (err) {
        row[key] = { error: err instanceof Error ? err.message : String(err) };
      }
    }
    if (!tiles[0]) {
      const d = { m, n, k, batch: 1 };
      const c = chooseGemm(d, gpu.device.limits.maxStorageBufferBindingSize);
      row.chosen = { tile: gemmTileName(c.tile), splits: c.splits };
    }
    if (withStock) {
      setMatMulRoute('stock');
      const ms = await time(() => tf.matMul(a, b, tA, tB));
      setMatMulRoute('auto');
      row.stock = { ms: +ms.toFixed(3), tflops: +(flop / ms / 1e9).toFixed(2) };
    }
    tf.dispose([a, b]);
    rows.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  }
}

/** Largest |ours − float64 reference| over every form on a ragged shape. */
async function accuracy(m: number, k: number, n: number) {
  const out: Record<string, number> = {};
  const rnd = seededRandom(5);
  const av = Float32Array.from({ length: m * k }, () => rnd() * 2 - 1);
  const bv = Float32Array.from({ length: k * n }, () => rnd() * 2 - 1);
  for (const form of ['NN', 'NT', 'TN', 'TT'] as Form[]) {
    const { got, ref } = await gemmSides(av, bv, m, k, n, form);
    let err = 0;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) err = Math.max(err, Math.abs(got[i * n + j] - ref(i, j)));
    out[form] = err;
  }
  return out;
}

const best: Record<string, { tile: string; tflops: number }> = {};
for (const row of rows)
  for (const [key, v] of Object.entries(row))
    if (v && typeof v === 'object' && 'tflops' in v && key !== 'stock') {
      const t = (v as { tflops: number }).tflops;
      const id = `${row.shape} ${row.form}`;
      if (!best[id] || t > best[id].tflops) best[id] = { tile: key, tflops: t };
    }

printJson({
  bench: 'gemm',
  backend: selection.description,
  device: getWebGPUDeviceInfo(),
  limits: {
    maxStorageBufferBindingSize: gpu.device.limits.maxStorageBufferBindingSize,
    maxComputeWorkgroupStorageSize: gpu.device.limits.maxComputeWorkgroupStorageSize,
  },
  dawnFlags: process.env.EDKM_DAWN_FLAGS ?? '',
  reps,
  rows,
  best,
  maxAbsError: { shape: '67x300x129 (values in [-1, 1])', ...(await accuracy(67, 300, 129)) },
});
