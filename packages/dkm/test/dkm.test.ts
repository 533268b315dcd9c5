import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import '@edkm/backend-webgpu';
import {
  InvalidArgumentError,
  NonFiniteError,
  ShapeError,
  StateError,
  fromHalfBits,
  roundToHalf,
  tf,
  toHalfBits,
  useBackend,
} from '@edkm/core';
import { seededRandom, testBackends } from '@edkm/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type DkmConfig,
  type DkmRuntimeOptions,
  DkmTensor,
  dequantize,
  dkmPlain,
} from '../src/index';
import { dkmReference } from './reference';

const backends = await testBackends();

/** Weights with many repeated 16-bit values (as real bf16 weights have), N(0, scale²). */
function weights(rows: number, cols: number, seed: number, scale = 0.05): Float32Array {
  const r = seededRandom(seed);
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < out.length; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return roundToHalf(out, 'bf16');
}

/** Output and gradient of sum(W̃ ⊙ R) for one mode. */
async function run(
  w: Float32Array,
  shape: [number, number],
  config: Partial<DkmConfig>,
  probe: Float32Array,
  runtime: DkmRuntimeOptions = {},
) {
  const dkm = new DkmTensor(shape, config, runtime);
  const wt = tf.tensor2d(w, shape);
  await dkm.prepare(wt);
  const r = tf.tensor2d(probe, shape);
  const f = (x: tf.Tensor) => dkm.apply(x).mul(r).sum() as tf.Scalar;
  const grad = tf.grad(f)(wt);
  const out = dkm.apply(wt);
  const [group] = await dkm.describe();
  const result = {
    group,
    out: (await out.data()) as Float32Array,
    grad: (await grad.data()) as Float32Array,
    iters: dkm.iterations,
    distinct: dkm.distinctPoints,
  };
  tf.dispose([wt, r, grad, out]);
  dkm.dispose();
  return result;
}

function maxRelError(a: Float32Array, b: Float32Array): number {
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  let err = 0;
  for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i] - b[i]));
  return err / (scale || 1);
}

const cases: { shape: [number, number]; config: Partial<DkmConfig> }[] = [
  { shape: [8, 16], config: { bits: 1 } },
  { shape: [16, 24], config: { bits: 3 } },
  { shape: [12, 32], config: { bits: 4, clusterDim: 2 } },
  { shape: [16, 32], config: { bits: 2, clusterDim: 4 } },
  { shape: [16, 16], config: { bits: 3, perChannelScale: true } },
  { shape: [16, 24], config: { bits: 2, groupSize: 4 } },
  {
    shape: [8, 32],
    config: { bits: 3, clusterDim: 2, perChannelScale: true, groupSize: 4, init: 'quantiles' },
  },
  { shape: [32, 64], config: { bits: 6 } },
  { shape: [32, 64], config: { bits: 8, tauScale: 4 } },
  { shape: [16, 16], config: { bits: 3, weightDtype: 'fp16', tau: 1e-4 } },
];

describe.each(backends)('DKM on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it.each(cases)(
    'plain and edkm agree on outputs and gradients: $shape $config',
    async ({ shape, config }) => {
      const seed = shape[0] * 31 + shape[1] + (config.bits ?? 0);
      const w = weights(shape[0], shape[1], seed);
      const probe = weights(shape[0], shape[1], seed + 1, 1);
      // the exact DKM gradient (checked against finite differences below); the per-code gradient,
      // a straight-through mean, has its own test
      const cfg: Partial<DkmConfig> = {
        maxIters: 4,
        epsilon: 0,
        tau: 'auto',
        gradient: 'weight',
        ...config,
      };
      const plain = await run(w, shape, { ...cfg, mode: 'plain' }, probe);
      const edkm = await run(w, shape, { ...cfg, mode: 'edkm' }, probe);
      expect(edkm.iters).toEqual(plain.iters);
      const distinct = (r: { distinct: number[] }) => r.distinct.reduce((a, b) => a + b);
      // uniquification saves work (scalars repeat in bf16; random vectors of a small tensor may not)
      if ((config.clusterDim ?? 1) === 1) expect(distinct(edkm)).toBeLessThan(distinct(plain));
      else expect(distinct(edkm)).toBeLessThanOrEqual(distinct(plain));
      const manyCentroids = (config.bits ?? 0) >= 6;
      // with 64–256 centroids plain's float32 sums over N weights drift ~1e-6 (and ~1e-6 with few on
      // wasm, whose XNNPACK products sum in another order); the float64 reference decides below
      expect(maxRelError(edkm.out, plain.out)).toBeLessThan(manyCentroids ? 3e-6 : 2e-6);
      if (!config.groupSize && !config.perChannelScale) {
        // both gradients against a float64 directional finite difference of the reference
        const d = config.clusterDim ?? 1;
        const { initial, tau, iterations } = plain.group;
        const dir = weights(shape[0], shape[1], seed + 2, 1);
        const f = (s: number) =>
          dkmReference(
            Float64Array.from(w, (x, i) => x + s * dir[i]),
            d,
            initial,
            tau,
            iterations,
          ).reduce((acc, y, i) => acc + y * probe[i], 0);
        const h = 1e-8 * tau ** 0.5;
        const fd = (f(h) - f(-h)) / (2 * h);
        const dot = (g: Float32Array) => g.reduce((acc, x, i) => acc + x * dir[i], 0);
        const exact = dkmReference(Float64Array.from(w), d, initial, tau, iterations);
        expect(maxRelError(edkm.out, Float32Array.from(exact))).toBeLessThan(2e-6); // float32 vs float64
        const errPlain = Math.abs(dot(plain.grad) - fd);
        const errEdkm = Math.abs(dot(edkm.grad) - fd);
        expect(errPlain).toBeLessThan(1e-3 * Math.max(1, Math.abs(fd)));
        expect(errEdkm).toBeLessThan(1e-3 * Math.max(1, Math.abs(fd)));
      }
      // with many centroids and a sharp softmax both float32 gradients carry up to ~3e-4 of rounding (each
      // still within 1e-3 of the float64 reference above)
      expect(maxRelError(edkm.grad, plain.grad)).toBeLessThan(
        (config.bits ?? 0) >= 6 ? 5e-4 : 1e-5, // GPU atomics sum in any order
      );
      // and the clustered weight is not trivially the input
      expect(maxRelError(plain.out, w)).toBeGreaterThan(1e-4);
    },
  );
});

/**
 * The per-code gradient's plain reference: plain DKM's per-weight gradients averaged over the
 * vectors that share their 16-bit codes (within each group of rows).
 */
function meanOverCodes(
  grad: Float32Array,
  w: Float32Array,
  shape: [number, number],
  d: number,
  groupSize: number,
): Float32Array {
  const codes = toHalfBits(w, 'bf16');
  const rowsPer = groupSize || shape[0];
  const key = (v: number) =>
    `${Math.floor((v * d) / (rowsPer * shape[1]))}:${Array.from(codes.subarray(v * d, v * d + d))}`;
  const sums = new Map<string, { n: number; s: Float64Array }>();
  for (let v = 0; v < grad.length / d; v++) {
    const e = sums.get(key(v)) ?? { n: 0, s: new Float64Array(d) };
    e.n++;
    for (let b = 0; b < d; b++) e.s[b] += grad[v * d + b];
    sums.set(key(v), e);
  }
  return Float32Array.from(grad, (_, i) => {
    const e = sums.get(key(Math.floor(i / d)))!;
    return e.s[i % d] / e.n;
  });
}

describe.each(backends)('per-code gradient on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  const codeCases: { shape: [number, number]; config: Partial<DkmConfig> }[] = [
    { shape: [16, 24], config: { bits: 3 } },
    { shape: [12, 32], config: { bits: 4, clusterDim: 2 } },
    { shape: [16, 24], config: { bits: 2, groupSize: 4 } },
    { shape: [16, 16], config: { bits: 3, weightDtype: 'fp16', tau: 1e-4 } },
  ];
  it.each(codeCases)(
    'equals the mean of the per-weight gradients over each code, plain and eDKM: $shape $config',
    async ({ shape, config }) => {
      const seed = shape[0] * 17 + shape[1];
      const w = weights(shape[0], shape[1], seed);
      const probe = weights(shape[0], shape[1], seed + 1, 1);
      const cfg: Partial<DkmConfig> = { maxIters: 3, epsilon: 0, ...config };
      const perWeight = await run(w, shape, { ...cfg, mode: 'plain', gradient: 'weight' }, probe);
      const d = config.clusterDim ?? 1;
      const codes = config.weightDtype === 'fp16' ? roundToHalf(w, 'fp16') : w;
      const expected = meanOverCodes(perWeight.grad, codes, shape, d, config.groupSize ?? 0);
      // the reference changes the gradient, not the value
      const variants = [
        await run(w, shape, { ...cfg, mode: 'plain', gradient: 'code' }, probe),
        await run(w, shape, { ...cfg, gradient: 'code' }, probe),
        await run(w, shape, { ...cfg, gradient: 'code' }, probe, { tables: 'index' }),
        await run(w, shape, { ...cfg, gradient: 'code' }, probe, { uniquify: false }),
      ];
      for (const v of variants) {
        expect(maxRelError(v.out, perWeight.out)).toBeLessThan(3e-6);
        // (1e-4: with τ = 1e-4 the sharp softmax amplifies float32 summation order, e.g. XNNPACK's on wasm)
        expect(maxRelError(v.grad, expected)).toBeLessThan(config.tau ? 1e-4 : 5e-5);
      }
      // and it is not the per-weight gradient (scalars share codes; random 2-vectors rarely do)
      if (d === 1) expect(maxRelError(variants[1].grad, perWeight.grad)).toBeGreaterThan(1e-3);
    },
    180_000, // five DKM runs; the first on a software GPU compiles every shader
  );

  it('τ = variance: 0.05 × the variance of the rounded weights, fixed at the first prepare', async () => {
    const shape: [number, number] = [16, 32];
    const w = weights(...shape, 5);
    const dkm = new DkmTensor(shape, { bits: 3 });
    const wt = tf.tensor2d(w, shape);
    await dkm.prepare(wt);
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    const variance = w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length;
    const [first] = await dkm.describe();
    expect(first.tau).toBeCloseTo(0.05 * variance, 10);
    const moved = wt.mul(3);
    await dkm.prepare(moved);
    expect((await dkm.describe())[0].tau).toBe(first.tau);
    const scaled = new DkmTensor(shape, { bits: 3, tauScale: 0.5 });
    await scaled.prepare(wt);
    expect((await scaled.describe())[0].tau).toBeCloseTo(0.5 * variance, 10);
    tf.dispose([wt, moved]);
    dkm.dispose();
    scaled.dispose();
  });
});

describe('plain DKM gradients against central finite differences', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it.each([1, 2])('clusterDim %i', async (d) => {
    const m = 12;
    const r = seededRandom(7 + d);
    const v = Float32Array.from({ length: m * d }, () => r() * 2 - 1);
    const c0 = Float32Array.from({ length: 3 * d }, (_, i) => (i - 1.5 * d) / (1.5 * d));
    const probe = Float32Array.from({ length: m * d }, () => r() * 2 - 1);
    const tau = 0.3;
    const f = (x: tf.Tensor) =>
      dkmPlain(x as tf.Tensor2D, tf.tensor2d(c0, [3, d]), tau, 3)
        .mul(tf.tensor2d(probe, [m, d]))
        .sum() as tf.Scalar;
    const grad = (await tf
      .grad(f)(tf.tensor2d(v, [m, d]))
      .data()) as Float32Array;
    const h = 1e-2;
    let worst = 0;
    for (let i = 0; i < v.length; i++) {
      const plus = Float32Array.from(v);
      plus[i] += h;
      const minus = Float32Array.from(v);
      minus[i] -= h;
      const fd =
        ((await f(tf.tensor2d(plus, [m, d])).data())[0] -
          (await f(tf.tensor2d(minus, [m, d])).data())[0]) /
        (2 * h);
      worst = Math.max(worst, Math.abs(fd - grad[i]) / Math.max(1, Math.abs(fd)));
    }
    expect(worst).toBeLessThan(5e-3);
  });
});

describe('DKM errors and state', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('rejects bad configuration and shapes with typed errors', () => {
    expect(() => new DkmTensor([4, 4], { bits: 0 })).toThrow(InvalidArgumentError);
    expect(() => new DkmTensor([4, 4], { bits: 9 })).toThrow(/bits must be an integer in \[1, 8\]/);
    expect(() => new DkmTensor([4, 4], { clusterDim: 9 })).toThrow(/clusterDim/);
    expect(() => new DkmTensor([4, 6], { clusterDim: 4 })).toThrow(ShapeError);
    expect(() => new DkmTensor([2, 4], { bits: 4 })).toThrow(/16 centroids exceed the 8 vectors/);
    expect(() => new DkmTensor([4, 4], { groupSize: 3 })).toThrow(/groupSize 3 does not divide/);
    expect(() => new DkmTensor([4, 4], { tau: -1 })).toThrow(/tau must be a positive number/);
    expect(() => new DkmTensor([4, 4], { gradient: 'mean' as never })).toThrow(
      /gradient must be 'code' or 'weight'/,
    );
    expect(() => new DkmTensor([4, 4], { colour: 'red' } as never)).toThrow(
      /unknown DKM option 'colour'/,
    );
  });

  it('rejects NaN weights, a wrong shape, and apply() on weights it did not prepare', async () => {
    const dkm = new DkmTensor([4, 4], { bits: 1 });
    const w = Float32Array.from({ length: 16 }, (_, i) => i / 16);
    w[5] = Number.NaN;
    await expect(dkm.prepare(tf.tensor2d(w, [4, 4]))).rejects.toThrow(NonFiniteError);
    await expect(dkm.prepare(tf.zeros([4, 5]))).rejects.toThrow(
      /expects a weight of shape \[4,4\]/,
    );
    w[5] = 0.3;
    const a = tf.tensor2d(w, [4, 4]);
    await dkm.prepare(a);
    expect(() => dkm.apply(tf.tensor2d(w, [4, 4]))).toThrow(StateError);
    expect(() => dkm.apply(a.clone())).not.toThrow(); // a clone shares the prepared data
  });

  it('palettize gives fp16 LUTs and hard indices whose dequantized weights are the nearest centroids', async () => {
    const shape: [number, number] = [16, 32];
    const w = weights(...shape, 3);
    const dkm = new DkmTensor(shape, { bits: 3, perChannelScale: true, groupSize: 8 });
    const wt = tf.tensor2d(w, shape);
    await dkm.prepare(wt);
    const p = await dkm.palettize(wt);
    expect(p.lut.length).toBe(2 * 8);
    expect(p.indices.length).toBe(16 * 32);
    expect(Math.max(...p.indices)).toBeLessThan(8);
    const dense = dequantize(p);
    // every dequantized weight is the centroid nearest to the weight (in normalised space)
    let mse = 0;
    for (let i = 0; i < w.length; i++) mse += (dense[i] - w[i]) ** 2;
    expect(mse / w.length).toBeLessThan(0.05 ** 2 * 0.1); // 3 bits: far below the weights' variance
    // and it is close to the soft-clustered weight of a converged, sharp DKM
    const soft = (await dkm.apply(wt).data()) as Float32Array;
    expect(maxRelError(dense, soft)).toBeLessThan(0.5);
    dkm.dispose();
  });

  it.each([
    ['one LUT', { bits: 3 }],
    ['per-channel scales, groups of rows', { bits: 2, perChannelScale: true, groupSize: 4 }],
    ['fp16 codes', { bits: 4, weightDtype: 'fp16' as const }],
  ])(
    'palettize (%s): every index is the nearest LUT entry to the rounded weight, first on ties',
    async (_, config) => {
      const shape: [number, number] = [16, 24];
      const w = weights(...shape, 5);
      w[7] = w[8]; // repeated values
      const dkm = new DkmTensor(shape, config);
      const wt = tf.tensor2d(w, shape);
      await dkm.prepare(wt);
      const p = await dkm.palettize(wt);
      const k = 2 ** config.bits;
      const lut = fromHalfBits(p.lut, 'fp16');
      const dtype = 'weightDtype' in config ? config.weightDtype : 'bf16';
      for (let i = 0; i < w.length; i++) {
        const row = Math.floor(i / shape[1]);
        const g = Math.floor(row / p.groupSize);
        const normalised = Float32Array.of(p.scales ? w[i] / p.scales[row] : w[i]);
        const x = fromHalfBits(toHalfBits(normalised, dtype), dtype)[0];
        let best = 0;
        for (let j = 1; j < k; j++)
          if ((x - lut[g * k + j]) ** 2 < (x - lut[g * k + best]) ** 2) best = j;
        expect(p.indices[i]).toBe(best);
      }
      dkm.dispose();
    },
  );

  it('getState/setState resume training bit for bit (through JSON), and reject a state of another shape', async () => {
    const shape: [number, number] = [8, 16];
    const run = async (split: boolean) => {
      let dkm = new DkmTensor(shape, { bits: 2, groupSize: 4 });
      const v = tf.variable(tf.tensor2d(weights(...shape, 11), shape));
      const opt = tf.train.sgd(0.05);
      for (let step = 0; step < 6; step++) {
        if (split && step === 3) {
          await dkm.settled(); // the warm start (C_T) reaches the host without prepare waiting
          const saved = JSON.parse(JSON.stringify(dkm.getState()));
          dkm.dispose();
          dkm = new DkmTensor(shape, { bits: 2, groupSize: 4 });
          dkm.setState(saved);
        }
        await dkm.prepare(v);
        const d = dkm;
        opt.minimize(() => d.apply(v).sub(0.01).square().sum() as tf.Scalar);
      }
      const out = (await v.data()) as Float32Array;
      dkm.dispose();
      v.dispose();
      return out;
    };
    expect(Buffer.from((await run(true)).buffer)).toEqual(Buffer.from((await run(false)).buffer));
    const other = new DkmTensor([8, 16], { bits: 3 });
    const state = new DkmTensor(shape, { bits: 2, groupSize: 4 }).getState();
    expect(() => other.setState({ ...state, warm: [[1, 2]] })).toThrow(/does not fit/);
  });

  it('does not leak tensors across prepare/apply/backward cycles', async () => {
    const shape: [number, number] = [8, 16];
    const dkm = new DkmTensor(shape, { bits: 2 });
    const v = tf.variable(tf.tensor2d(weights(...shape, 9), shape));
    const opt = tf.train.sgd(0.1);
    await dkm.prepare(v);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      await dkm.prepare(v);
      opt.minimize(() => dkm.apply(v).square().sum() as tf.Scalar);
    }
    expect(tf.memory().numTensors).toBe(before);
    dkm.dispose();
  });
});

describe('eDKM ablation switches (marshaling, sharding, no uniquification)', () => {
  beforeAll(async () => {
    await useBackend(backends[backends.length - 1]);
  });

  it('give the same outputs and gradients as the default, bit for bit, and no leaks', async () => {
    const { Marshaler } = await import('@edkm/marshal');
    const shape: [number, number] = [16, 32];
    const w = weights(...shape, 11);
    const probe = weights(...shape, 12, 1);
    // quantile init depends only on the value distribution, so it is the same without uniquification
    const cfg = { bits: 3, maxIters: 3, epsilon: 0, init: 'quantiles' as const };
    const base = await run(w, shape, cfg, probe, { tables: 'index' }); // index list, no marshaling
    const marshal = new Marshaler();
    const variants: DkmRuntimeOptions[] = [
      { marshal },
      { shards: 3 },
      { marshal, shards: 4 },
      { uniquify: false },
      {},
    ];
    for (const runtime of variants) {
      const dkm = new DkmTensor(shape, cfg, runtime);
      const wt = tf.tensor2d(w, shape);
      await dkm.prepare(wt);
      const before = tf.memory().numTensors;
      const grad = tf.grad(
        (x: tf.Tensor) => dkm.apply(x).mul(tf.tensor2d(probe, shape)).sum() as tf.Scalar,
      )(wt);
      const out = dkm.apply(wt);
      if (runtime.uniquify === false || Object.keys(runtime).length === 0) {
        // no uniquification, or code tables (float64 host iterations): equal up to float32 rounding
        // (2e-6: XNNPACK's products on wasm sum in another order)
        expect(maxRelError((await out.data()) as Float32Array, base.out)).toBeLessThan(2e-6);
        expect(maxRelError((await grad.data()) as Float32Array, base.grad)).toBeLessThan(1e-5);
      } else {
        expect(Array.from(await out.data())).toEqual(Array.from(base.out));
        expect(Array.from(await grad.data())).toEqual(Array.from(base.grad));
      }
      tf.dispose([out, grad]);
      expect(tf.memory().numTensors).toBe(before);
      dkm.dispose();
      wt.dispose();
    }
    expect(marshal.stats().entries).toBe(0);
  });
});

describe.each(backends)('DkmTensor.linear (fused, W̃ not kept) on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it('equals matMul(x, apply(w)ᵀ) in value and in both gradients, bit for bit, without leaks', async () => {
    const shape: [number, number] = [24, 40];
    const w = tf.variable(tf.tensor2d(weights(...shape, 21), shape));
    const x = tf.tensor2d(weights(6, 40, 22, 1), [6, 40]);
    const probe = tf.tensor2d(weights(6, 24, 23, 1), [6, 24]);
    const dkm = new DkmTensor(shape, { bits: 3, maxIters: 4, epsilon: 0 });
    await dkm.prepare(w);
    const loss =
      (f: (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor) => (a: tf.Tensor, b: tf.Tensor) =>
        f(a as tf.Tensor2D, b as tf.Tensor2D)
          .mul(probe)
          .sum() as tf.Scalar;
    const fused = loss((a, b) => dkm.linear(a, b));
    const unfused = loss((a, b) => tf.matMul(a, dkm.apply(b), false, true));
    const before = tf.memory().numTensors;
    const [dxF, dwF] = tf.grads(fused)([x, w]);
    const [dxU, dwU] = tf.grads(unfused)([x, w]);
    const yF = dkm.linear(x, w);
    const yU = tf.tidy(() => tf.matMul(x, dkm.apply(w), false, true));
    expect(Array.from(await yF.data())).toEqual(Array.from(await yU.data()));
    expect(Array.from(await dxF.data())).toEqual(Array.from(await dxU.data()));
    expect(Array.from(await dwF.data())).toEqual(Array.from(await dwU.data()));
    expect(dwF.shape).toEqual(shape);
    tf.dispose([dxF, dwF, dxU, dwU, yF, yU]);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => dkm.linear(tf.zeros([2, 7]) as tf.Tensor2D, w)).toThrow(ShapeError);
    dkm.dispose();
    tf.dispose([w, x, probe]);
  });

  it('falls back to the unfused form where there are no code tables (per-channel scales)', async () => {
    const shape: [number, number] = [8, 16];
    const w = tf.tensor2d(weights(...shape, 31), shape);
    const x = tf.tensor2d(weights(3, 16, 32, 1), [3, 16]);
    const dkm = new DkmTensor(shape, { bits: 2, maxIters: 2, perChannelScale: true });
    await dkm.prepare(w);
    const y = dkm.linear(x, w);
    const ref = tf.tidy(() => tf.matMul(x, dkm.apply(w), false, true));
    expect(Array.from(await y.data())).toEqual(Array.from(await ref.data()));
    tf.dispose([w, x, y, ref]);
    dkm.dispose();
  });
});

describe.each(backends)('DkmTensor.prepareOnDevice on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it('gives prepare()’s outputs, gradients, iterations and warm start, with nothing read back', async () => {
    const shape: [number, number] = [24, 40];
    const w0 = weights(...shape, 41);
    // the second step's weights: moved a little, as after an optimizer step
    const w1 = Float32Array.from(w0, (v, i) => v + 0.002 * Math.sin(i));
    const x = tf.tensor2d(weights(6, 40, 42, 1), [6, 40]);
    const probe = tf.tensor2d(weights(6, 24, 43, 1), [6, 24]);
    for (const config of [
      { bits: 3 },
      { bits: 2, gradient: 'weight' as const, tau: 'auto' as const, groupSize: 12 },
      { bits: 3, perChannelScale: true, epsilon: 0, maxIters: 4 },
    ]) {
      const results: { y: number[]; dx: number[]; dw: number[]; warm: number[][]; it: number[] }[] =
        [];
      for (const onDevice of [false, true]) {
        const dkm = new DkmTensor(shape, config);
        expect(dkm.canPrepareOnDevice()).toBe(false);
        expect(() => dkm.prepareOnDevice(tf.zeros(shape))).toThrow(StateError);
        const w = tf.variable(tf.tensor2d(w0, shape));
        await dkm.prepare(w);
        const next = tf.tensor2d(w1, shape);
        w.assign(next);
        next.dispose();
        expect(dkm.canPrepareOnDevice()).toBe(true);
        if (onDevice) dkm.prepareOnDevice(w);
        else await dkm.prepare(w);
        const loss = (a: tf.Tensor, b: tf.Tensor) =>
          dkm
            .linear(a as tf.Tensor2D, b as tf.Tensor2D)
            .mul(probe)
            .sum() as tf.Scalar;
        const [dx, dw] = tf.grads(loss)([x, w]);
        const y = dkm.linear(x, w);
        await dkm.settled();
        results.push({
          y: Array.from(await y.data()),
          dx: Array.from(await dx.data()),
          dw: Array.from(await dw.data()),
          warm: dkm.getState().warm,
          it: dkm.iterations,
        });
        tf.dispose([dx, dw, y, w]);
        dkm.dispose();
      }
      const [host, device] = results;
      const close = (a: number[], b: number[], tol: number) => {
        const scale = Math.max(1e-6, ...b.map(Math.abs));
        a.forEach((v, i) => expect(Math.abs(v - b[i]) / scale).toBeLessThan(tol));
      };
      close(device.y, host.y, 1e-5);
      close(device.dx, host.dx, 1e-5);
      close(device.dw, host.dw, 1e-4);
      device.warm.forEach((c, g) => close(c, host.warm[g], 1e-5));
      expect(device.it).toEqual(host.it);
    }
    tf.dispose([x, probe]);
  });
});
