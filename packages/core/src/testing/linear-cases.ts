import {
  DecodeKernelNames,
  type LinearFusion,
  LinearKernelNames,
  type PaletteWeightHost,
  bf16GatherRows,
  cachedAttention,
  decodeReference,
  disposePackedWeight,
  kvWrite,
  kvWriteAttention,
  linearReference,
  packedMatMul,
  paletteWeightHost,
  rmsNormRows,
  ropeTable,
  seededRandom,
  siluMul,
  toHalfBits,
  uploadBf16Weight,
  uploadPaletteWeight,
} from '@edkm/core';
import * as tf from '@tensorflow/tfjs-core';
import type { ConformanceCase } from './index';

/** Packs indices as the export does (element i at bits [i·bits, (i+1)·bits), LSB first). */
function pack(indices: number[], bits: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((indices.length * bits) / 8));
  indices.forEach((v, i) => {
    for (let b = 0; b < bits; b++)
      if ((v >> b) & 1) out[(i * bits + b) >> 3] |= 1 << ((i * bits + b) & 7);
  });
  return out;
}

export interface PaletteCase {
  m: number;
  n: number;
  k: number;
  bits: number;
  d?: number;
  groups?: number[];
  scales?: boolean;
  permute?: boolean;
}

export function randomPalette(c: PaletteCase, seed: number): PaletteWeightHost {
  const rnd = seededRandom(seed);
  const d = c.d ?? 1;
  const groups = c.groups ?? [c.n];
  const indices = Array.from({ length: (c.n * c.k) / d }, () => Math.floor(rnd() * 2 ** c.bits));
  const lut = toHalfBits(
    Float32Array.from({ length: groups.length * 2 ** c.bits * d }, () => rnd() * 2 - 1),
    'fp16',
  );
  const permutation = c.permute
    ? Int32Array.from(Array.from({ length: c.n }, (_, i) => i).sort(() => rnd() - 0.5))
    : undefined;
  return paletteWeightHost({
    shape: [c.n, c.k],
    bits: c.bits,
    clusterDim: d,
    packed: pack(indices, c.bits),
    lut,
    groupRows: groups,
    scales: c.scales ? Float32Array.from({ length: c.n }, () => 0.5 + rnd()) : undefined,
    permutation,
  });
}

async function read(t: tf.Tensor): Promise<Float32Array> {
  const data = Float32Array.from((await t.data()) as Float32Array);
  t.dispose();
  return data;
}

function tolerance(expected: Float32Array, k: number): number {
  let max = 1;
  for (const v of expected) max = Math.max(max, Math.abs(v));
  return 1e-6 * k * max;
}

const paletteCases: PaletteCase[] = [
  ...[1, 2, 3, 4, 5, 6, 7, 8].map((bits) => ({ m: 1, n: 19, k: 64, bits })),
  { m: 3, n: 40, k: 96, bits: 3, groups: [7, 30, 3], scales: true, permute: true },
  { m: 11, n: 9, k: 32, bits: 4, scales: true },
  { m: 2, n: 13, k: 20, bits: 3, groups: [5, 8], permute: true },
  { m: 1, n: 6, k: 24, bits: 5, d: 2, scales: true },
  // more than one 64-wide workgroup of weight rows, and a partial tile of x rows
  { m: 6, n: 70, k: 64, bits: 3, groups: [33, 37], scales: true, permute: true },
  // enough rows for the host plugins' table-lookup GEMV (lookupPlan): pairs, triples
  { m: 1, n: 300, k: 64, bits: 3 },
  { m: 2, n: 600, k: 30, bits: 2, scales: true, permute: true },
  { m: 1, n: 200, k: 64, bits: 3, groups: [120, 80], scales: true, permute: true },
  { m: 1, n: 200, k: 96, bits: 2, groups: [50, 150] },
  // rows longer than one step of the GPU rows shape's 32 lanes × 8 weights, at 1–4 bits
  ...[1, 2, 3, 4].map((bits) => ({ m: 2, n: 21, k: 544, bits, scales: true })),
  { m: 1, n: 17, k: 1024, bits: 3, groups: [9, 8], permute: true },
  { m: 3, n: 11, k: 1312, bits: 2, scales: true },
  // one row of x and K ≥ 2048: the GPU's x-stationary GEMV (a thread per 32 columns, 65 chunks:
  // a partial subgroup of idle threads; rows not a multiple of its row tile)
  ...[1, 3, 4, 8].map((bits) => ({
    m: 1,
    n: 37,
    k: 2080,
    bits,
    groups: [20, 17],
    scales: true,
    permute: true,
  })),
];

export function linearCases(): ConformanceCase[] {
  const cases: ConformanceCase[] = [];
  paletteCases.forEach((c, i) => {
    const extras = [
      c.d ? `d=${c.d}` : '',
      c.groups ? `groups=[${c.groups}]` : '',
      c.scales ? 'scales' : '',
      c.permute ? 'permuted' : '',
    ].filter(Boolean);
    cases.push({
      kernelName: LinearKernelNames.PaletteMatMul,
      name: `paletteMatMul m=${c.m} n=${c.n} k=${c.k} bits=${c.bits} ${extras.join(' ')}`,
      run: async () => {
        const h = randomPalette(c, 7000 + i);
        const rnd = seededRandom(7100 + i);
        const x = Float32Array.from({ length: c.m * c.k }, () => rnd() * 2 - 1);
        const w = uploadPaletteWeight(h);
        const xt = tf.tensor2d(x, [c.m, c.k]);
        const actual = await read(packedMatMul(xt, w));
        xt.dispose();
        disposePackedWeight(w);
        const expected = linearReference.paletteMatMul(x, c.m, h);
        return { actual, expected, tolerance: tolerance(expected, c.k) };
      },
    });
  });
  const bf16Shapes = [
    { m: 1, n: 17, k: 64 },
    { m: 5, n: 9, k: 40 },
    { m: 1, n: 7, k: 13 },
    { m: 7, n: 70, k: 24 },
  ];
  bf16Shapes.forEach((s, i) => {
    cases.push({
      kernelName: LinearKernelNames.Bf16MatMul,
      name: `bf16MatMul m=${s.m} n=${s.n} k=${s.k}`,
      run: async () => {
        const rnd = seededRandom(7200 + i);
        const bits = toHalfBits(
          Float32Array.from({ length: s.n * s.k }, () => rnd() * 2 - 1),
          'bf16',
        );
        const x = Float32Array.from({ length: s.m * s.k }, () => rnd() * 2 - 1);
        const w = uploadBf16Weight([s.n, s.k], bits);
        const xt = tf.tensor2d(x, [s.m, s.k]);
        const actual = await read(packedMatMul(xt, w));
        xt.dispose();
        disposePackedWeight(w);
        const expected = linearReference.bf16MatMul(x, s.m, bits, s.n, s.k);
        return { actual, expected, tolerance: tolerance(expected, s.k) };
      },
    });
  });
  // fused prologues and residual (the decode step's RMSNorm / SwiGLU / residual add in the product)
  const fusedCases: (PaletteCase & { weight: 'palette' | 'bf16'; fusion: LinearFusion })[] = [
    {
      weight: 'palette',
      m: 3,
      n: 40,
      k: 96,
      bits: 3,
      scales: true,
      permute: true,
      fusion: { prologue: 'rmsnorm', eps: 1e-5, residual: true },
    },
    { weight: 'palette', m: 1, n: 19, k: 64, bits: 4, fusion: { residual: true } },
    // long rows: the GPU rows shape's unrolled steps and its remainder, under the RMS fold
    {
      weight: 'palette',
      m: 2,
      n: 13,
      k: 1312,
      bits: 3,
      scales: true,
      fusion: { prologue: 'rmsnorm', eps: 1e-5, residual: true },
    },
    { weight: 'palette', m: 9, n: 12, k: 64, bits: 2, fusion: { prologue: 'rmsnorm', eps: 1e-6 } },
    {
      weight: 'palette',
      m: 2,
      n: 13,
      k: 20,
      bits: 3,
      groups: [5, 8],
      fusion: { prologue: 'rmsnorm', eps: 1e-2 },
    },
    {
      weight: 'palette',
      m: 1,
      n: 6,
      k: 24,
      bits: 5,
      d: 2,
      scales: true,
      fusion: { residual: true },
    },
    {
      weight: 'bf16',
      m: 1,
      n: 17,
      k: 64,
      bits: 16,
      fusion: { prologue: 'rmsnorm', eps: 1e-5, residual: true },
    },
    { weight: 'bf16', m: 5, n: 9, k: 40, bits: 16, fusion: { residual: true } },
    { weight: 'bf16', m: 1, n: 7, k: 13, bits: 16, fusion: { prologue: 'rmsnorm', eps: 1e-5 } },
    { weight: 'bf16', m: 2, n: 7, k: 13, bits: 16, fusion: { residual: true } },
    // the GPU's x-stationary GEMV under both fusions (one row of x, K ≥ 2048)
    {
      weight: 'palette',
      m: 1,
      n: 45,
      k: 2048,
      bits: 3,
      scales: true,
      permute: true,
      fusion: { prologue: 'rmsnorm', eps: 1e-5, residual: true },
    },
    { weight: 'palette', m: 1, n: 21, k: 2112, bits: 2, fusion: { residual: true } },
    // the SwiGLU prologue (x [M, 2K]): in the GPU's GEMV, and SiluMul first everywhere else
    {
      weight: 'palette',
      m: 1,
      n: 33,
      k: 2048,
      bits: 3,
      scales: true,
      permute: true,
      fusion: { prologue: 'swiglu', residual: true },
    },
    { weight: 'palette', m: 3, n: 17, k: 96, bits: 4, fusion: { prologue: 'swiglu' } },
    { weight: 'bf16', m: 2, n: 9, k: 40, bits: 16, fusion: { prologue: 'swiglu', residual: true } },
    // more than one 64-wide workgroup of weight rows, and a partial tile of x rows
    {
      weight: 'palette',
      m: 6,
      n: 70,
      k: 64,
      bits: 3,
      groups: [33, 37],
      scales: true,
      permute: true,
      fusion: { prologue: 'rmsnorm', eps: 1e-5, residual: true },
    },
    {
      weight: 'bf16',
      m: 7,
      n: 70,
      k: 24,
      bits: 16,
      fusion: { prologue: 'rmsnorm', eps: 1e-5, residual: true },
    },
  ];
  fusedCases.forEach((c, i) => {
    const f = c.fusion;
    cases.push({
      kernelName:
        c.weight === 'palette' ? LinearKernelNames.PaletteMatMul : LinearKernelNames.Bf16MatMul,
      name: `${c.weight === 'palette' ? 'paletteMatMul' : 'bf16MatMul'} fused ${[f.prologue, f.residual ? 'residual' : ''].filter(Boolean).join(' + ')} m=${c.m} n=${c.n} k=${c.k}${c.d ? ` d=${c.d}` : ''}`,
      run: async () => {
        const rnd = seededRandom(7400 + i);
        const xw = c.fusion.prologue === 'swiglu' ? 2 * c.k : c.k;
        const x = Float32Array.from({ length: c.m * xw }, () => rnd() * 4 - 2);
        const g = Float32Array.from({ length: c.k }, () => 0.5 + rnd());
        const residual = Float32Array.from({ length: c.m * c.n }, () => rnd() * 2 - 1);
        let w: ReturnType<typeof uploadBf16Weight>;
        let product: (xp: Float32Array) => Float32Array;
        if (c.weight === 'palette') {
          const h = randomPalette(c, 7500 + i);
          w = uploadPaletteWeight(h);
          product = (xp) => linearReference.paletteMatMul(xp, c.m, h);
        } else {
          const bits = toHalfBits(
            Float32Array.from({ length: c.n * c.k }, () => rnd() * 2 - 1),
            'bf16',
          );
          w = uploadBf16Weight([c.n, c.k], bits);
          product = (xp) => linearReference.bf16MatMul(xp, c.m, bits, c.n, c.k);
        }
        const [xt, gt, rt] = [
          tf.tensor2d(x, [c.m, xw]),
          tf.tensor1d(g),
          tf.tensor2d(residual, [c.m, c.n]),
        ];
        const actual = await read(
          packedMatMul(xt, w, {
            rmsNorm: f.prologue === 'rmsnorm' ? { weight: gt, eps: f.eps as number } : undefined,
            swiglu: f.prologue === 'swiglu',
            residual: f.residual ? rt : undefined,
          }),
        );
        tf.dispose([xt, gt, rt]);
        disposePackedWeight(w);
        const expected = product(linearReference.prologue(x, c.m, f, g));
        if (f.residual) for (let j = 0; j < expected.length; j++) expected[j] += residual[j];
        return { actual, expected, tolerance: tolerance(expected, c.k) };
      },
    });
  });
  cases.push({
    kernelName: LinearKernelNames.Bf16GatherRows,
    name: 'bf16GatherRows odd K, out-of-range ids give zero rows',
    run: async () => {
      const rnd = seededRandom(7300);
      const [u, k] = [5, 7];
      const values = Float32Array.from({ length: u * k }, () => rnd() * 2 - 1);
      const bits = toHalfBits(values, 'bf16');
      const ids = Int32Array.from([4, -1, 0, 5, 3, 3]);
      const w = uploadBf16Weight([u, k], bits);
      const idt = tf.tensor1d(ids, 'int32');
      const actual = await read(bf16GatherRows(w, idt));
      idt.dispose();
      disposePackedWeight(w);
      const expected = new Float32Array(ids.length * k);
      const decoded = new Float32Array(new Uint32Array(Array.from(bits, (b) => b << 16)).buffer);
      ids.forEach((id, i) => {
        if (id >= 0 && id < u) expected.set(decoded.subarray(id * k, id * k + k), i * k);
      });
      return { actual, expected, tolerance: 0 };
    },
  });
  return cases;
}

const decodeShapes = [
  { b: 1, t: 1, h: 4, kv: 2, l: 9, d: 8, pos: 5, starts: [0] },
  { b: 2, t: 3, h: 6, kv: 2, l: 12, d: 96, pos: 4, starts: [0, 2] },
  { b: 1, t: 70, h: 2, kv: 1, l: 80, d: 4, pos: 3, starts: [1] },
  // long caches for few heads: the webgpu kernel splits the positions (flash-decoding); a split
  // wholly before a row's start, D over 64
  { b: 1, t: 1, h: 4, kv: 2, l: 300, d: 16, pos: 250, starts: [0] },
  { b: 2, t: 2, h: 2, kv: 1, l: 200, d: 130, pos: 150, starts: [0, 100] },
  // many heads over a long cache: the webgpu subgroup kernel's splits take several blocks of 32
  // slots each (7 splits of 96 here: interleaved, the live ones spread over all 7)
  { b: 1, t: 1, h: 64, kv: 8, l: 600, d: 8, pos: 250, starts: [3] },
];

/** A decode case's inputs (seeded), and its tensors (with the device position when asked). */
function decodeData(s: (typeof decodeShapes)[number], seed: number) {
  const rnd = seededRandom(seed);
  const cache = Float32Array.from({ length: 2 * s.b * s.kv * s.l * s.d }, () => rnd() * 2 - 1);
  const qkv = Float32Array.from(
    { length: s.b * s.t * (s.h + 2 * s.kv) * s.d },
    () => rnd() * 2 - 1,
  );
  const invFreq = Float32Array.from({ length: s.d / 2 }, (_, j) => 1 / 10000 ** ((2 * j) / s.d));
  const rope = ropeTable(s.l, invFreq);
  const attrs = { heads: s.h, kvHeads: s.kv, pos: s.pos };
  const shape = { b: s.b, kv: s.kv, l: s.l, d: s.d };
  const tensors = (position = false) => ({
    cache: tf.tensor(cache, [2, s.b, s.kv, s.l, s.d]),
    qkv: tf.tensor2d(qkv, [s.b * s.t, (s.h + 2 * s.kv) * s.d]),
    rope: tf.tensor2d(rope, [s.l, s.d]),
    starts: tf.tensor1d(Int32Array.from(s.starts), 'int32'),
    ...(position ? { position: tf.tensor1d([s.pos], 'int32') } : {}),
  });
  return { cache, qkv, rope, attrs, shape, tensors };
}

/**
 * kvWrite and cachedAttention on one decode shape against the references. With `device`, the
 * position comes from an int32 [1] tensor while attrs.pos claims 0: the kernels must follow the
 * tensor (a replayable step's form).
 */
function decodeKernelCases(
  s: (typeof decodeShapes)[number],
  seed: number,
  label: string,
  device: boolean,
): ConformanceCase[] {
  const make = () => {
    const d = decodeData(s, seed);
    const t = d.tensors(device);
    const claim = device ? { ...d.attrs, pos: 0 } : d.attrs;
    return { ...d, t, claim };
  };
  const starts = Int32Array.from(s.starts);
  return [
    {
      kernelName: DecodeKernelNames.KvWrite,
      name: `kvWrite ${label}`,
      run: async () => {
        const { cache, qkv, rope, attrs, shape, t, claim } = make();
        kvWrite(t.cache, t.qkv, t.rope, t.starts, claim, t.position).dispose();
        const actual = Float32Array.from((await t.cache.data()) as Float32Array);
        tf.dispose(Object.values(t));
        const expected = Float32Array.from(cache);
        decodeReference.kvWrite(expected, shape, qkv, rope, starts, attrs);
        return { actual, expected, tolerance: 1e-6 };
      },
    },
    {
      kernelName: DecodeKernelNames.CachedAttention,
      name: `cachedAttention ${label}`,
      run: async () => {
        const { cache, qkv, rope, attrs, shape, t, claim } = make();
        const actual = await read(
          cachedAttention(t.qkv, t.cache, t.rope, t.starts, claim, t.position),
        );
        tf.dispose(Object.values(t));
        const expected = decodeReference.cachedAttention(qkv, cache, shape, rope, starts, attrs);
        return { actual, expected, tolerance: 1e-5 };
      },
    },
    {
      // the attention's output, then the written cache
      kernelName: DecodeKernelNames.KvWriteAttention,
      name: `kvWriteAttention ${label}`,
      run: async () => {
        const { cache, qkv, rope, attrs, shape, t, claim } = make();
        const out = await read(
          kvWriteAttention(t.cache, t.qkv, t.rope, t.starts, claim, t.position),
        );
        const written = await read(t.cache);
        tf.dispose(Object.values(t));
        const after = Float32Array.from(cache);
        decodeReference.kvWrite(after, shape, qkv, rope, starts, attrs);
        const attention = decodeReference.cachedAttention(qkv, after, shape, rope, starts, attrs);
        const join = (a: ArrayLike<number>, b: ArrayLike<number>) => {
          const j = new Float32Array(a.length + b.length);
          j.set(a);
          j.set(b, a.length);
          return j;
        };
        return { actual: join(out, written), expected: join(attention, after), tolerance: 1e-5 };
      },
    },
  ];
}

/** Conformance of the decode kernels: KV writes in place, cached attention. */
export function decodeCases(): ConformanceCase[] {
  const cases: ConformanceCase[] = [];
  decodeShapes.forEach((s, i) => {
    const label = `b=${s.b} t=${s.t} h=${s.h} kv=${s.kv} l=${s.l} d=${s.d} pos=${s.pos} starts=[${s.starts}]`;
    cases.push(...decodeKernelCases(s, 7400 + i, label, false));
  });
  // the position read from the device (a replayable step)
  for (const i of [0, 1, 3, 5]) {
    const s = decodeShapes[i];
    const label = `b=${s.b} t=${s.t} l=${s.l} pos=${s.pos} (device position)`;
    cases.push(...decodeKernelCases(s, 7700 + i, label, true));
  }
  cases.push({
    kernelName: DecodeKernelNames.RmsNorm,
    name: 'rmsNorm m=3 h=100',
    run: async () => {
      const rnd = seededRandom(7500);
      const x = Float32Array.from({ length: 300 }, () => rnd() * 4 - 2);
      const w = Float32Array.from({ length: 100 }, () => rnd() + 0.5);
      const actual = await read(rmsNormRows(tf.tensor2d(x, [3, 100]), tf.tensor1d(w), 1e-5));
      return { actual, expected: decodeReference.rmsNorm(x, 100, w, 1e-5), tolerance: 1e-5 };
    },
  });
  cases.push({
    kernelName: DecodeKernelNames.SiluMul,
    name: 'siluMul m=2 i=37',
    run: async () => {
      const rnd = seededRandom(7600);
      const gu = Float32Array.from({ length: 2 * 74 }, () => rnd() * 8 - 4);
      const actual = await read(siluMul(tf.tensor2d(gu, [2, 74])));
      return { actual, expected: decodeReference.siluMul(gu, 2), tolerance: 1e-5 };
    },
  });
  return cases;
}
