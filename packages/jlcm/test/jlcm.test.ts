import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import '@edkm/backend-webgpu';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dequantize, validatePalette } from '@edkm/codec';
import {
  InvalidArgumentError,
  NonFiniteError,
  ShapeError,
  StateError,
  roundToHalf,
  tf,
  useBackend,
} from '@edkm/core';
import { seededRandom, testBackends } from '@edkm/core/testing';
import { Palettizer, parsePalettizerConfig } from '@edkm/dkm';
import { PalettizedFile, writePalettized } from '@edkm/palettized';
import { describe, expect, it } from 'vitest';
import {
  type JlcmConfig,
  JlcmTensor,
  groupRows,
  mapWeights,
  mapWeightsOnDevice,
  resolveJlcmConfig,
} from '../src/index';
import {
  type ReferenceLayout,
  finiteDifferences,
  hardWeight,
  nearestIndex,
  softWeight,
} from './reference';

const backends = await testBackends();

/**
 * Rows of two families, interleaved: even rows Gaussian, odd rows sparse (mostly small, a few
 * large weights), each row with its own scale: what grouping and per-row scales are for.
 */
function neurons(rows: number, cols: number, seed: number): Float32Array {
  const r = seededRandom(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r());
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const scale = 0.02 * (1 + 3 * r());
    for (let c = 0; c < cols; c++)
      out[i * cols + c] = scale * (i % 2 === 0 ? gauss() : r() < 0.1 ? 4 * gauss() : 0.2 * gauss());
  }
  return out;
}

/** The plain reference's view of a prepared tensor (codebooks and scales as used, fp16). */
async function referenceLayout(
  jlcm: JlcmTensor,
): Promise<{ layout: ReferenceLayout; tau: number[] }> {
  const info = await jlcm.describe();
  const [rows, cols] = jlcm.shape;
  const groupOf = new Int32Array(rows);
  info.groups.forEach((g, i) => {
    for (const r of g.rows) groupOf[r] = i;
  });
  const codebooks = new Float32Array(info.groups.length * jlcm.k * jlcm.config.clusterDim);
  info.groups.forEach((g, i) => codebooks.set(g.codebook, i * g.codebook.length));
  return {
    layout: {
      rows,
      cols,
      d: jlcm.config.clusterDim,
      k: jlcm.k,
      groupOf,
      codebooks,
      scales: info.scales,
    },
    tau: info.groups.map((g) => g.tau),
  };
}

function maxRelError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let scale = 0;
  let err = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]));
    err = Math.max(err, Math.abs(actual[i] - expected[i]));
  }
  return err / (scale || 1);
}

describe('config', () => {
  it('fills defaults and rejects bad options with typed errors', () => {
    expect(resolveJlcmConfig({ bits: 2 })).toMatchObject({
      bits: 2,
      codebooks: 4,
      perChannelScale: true,
    });
    const bad: [Partial<JlcmConfig> | Record<string, unknown>, RegExp][] = [
      [{ bits: 0 }, /bits must be an integer in \[1, 8\]/],
      [{ codebooks: 0 }, /codebooks must be/],
      [{ clusterDim: 9 }, /clusterDim must be/],
      [{ grouping: 'random' }, /grouping must be one of 'profile', 'spread', 'none'/],
      [{ tau: -1 }, /tau must be a positive number or 'auto'/],
      [{ tauScale: 0 }, /tauScale must be a positive number/],
      [{ perChannelScale: 'yes' }, /perChannelScale must be a boolean/],
      [{ codebook: 4 }, /unknown JLCM option 'codebook'/],
    ];
    for (const [config, message] of bad) {
      expect(() => resolveJlcmConfig(config as Partial<JlcmConfig>)).toThrow(InvalidArgumentError);
      expect(() => resolveJlcmConfig(config as Partial<JlcmConfig>)).toThrow(message);
    }
    expect(() => new JlcmTensor([8, 6], { clusterDim: 4 })).toThrow(ShapeError);
    expect(() => new JlcmTensor([4, 16], { codebooks: 5 })).toThrow(
      /5 codebooks need at least as many rows/,
    );
    expect(() => new JlcmTensor([8, 4], { bits: 4, codebooks: 4 })).toThrow(/need at least 4 rows/);
  });

  it('validates jlcm layers of a Palettizer config through the registered resolver', () => {
    const config = parsePalettizerConfig({
      global: { method: 'jlcm', bits: 2, codebooks: 2 },
      byName: { 'lm_head.weight': { method: 'dkm', bits: 8 }, 're:.*mlp.*': { bits: 3 } },
    });
    expect(config.global).toEqual({ method: 'jlcm', bits: 2, codebooks: 2 });
    expect(() =>
      parsePalettizerConfig({ byName: { x: { method: 'jlcm', codebooks: 0 } } }),
    ).toThrow(/byName "x": codebooks must be an integer/);
    // a byName entry inherits global's jlcm options: the merged entry is what gets validated
    expect(() =>
      parsePalettizerConfig({
        global: { method: 'jlcm', grouping: 'rows' },
        byName: { x: { bits: 3 } },
      }),
    ).toThrow(/global: grouping must be one of/);
    expect(() => parsePalettizerConfig({ global: { method: 'jlcm', maxIters: 3 } })).toThrow(
      /unknown JLCM option 'maxIters'/,
    );
  });
});

describe('grouping', () => {
  const rows = 24;
  const cols = 64;
  const w = neurons(rows, cols, 3);
  const family = (groupOf: Int32Array) =>
    [0, 1].map((f) => new Set(Array.from(groupOf).filter((_, r) => r % 2 === f)));

  it("'profile' puts each family of neurons (normalised row shape) in its own codebook", () => {
    const g = groupRows(w, rows, cols, 2, 'profile', { normalise: true, minRows: 1, seed: 0 });
    expect(family(g.groupOf).map((s) => s.size)).toEqual([1, 1]);
    expect(g.groupRows).toEqual([12, 12]);
    // stored order: group by group, ascending original rows; sparse rows (low spread) first
    expect(Array.from(g.permutation)).toEqual([
      ...Array.from({ length: 12 }, (_, i) => 2 * i + 1),
      ...Array.from({ length: 12 }, (_, i) => 2 * i),
    ]);
  });

  it("'spread' cuts the rows sorted by standard deviation; 'none' keeps the order", () => {
    const std = (r: number) =>
      Math.hypot(...w.subarray(r * cols, (r + 1) * cols)) / Math.sqrt(cols);
    const g = groupRows(w, rows, cols, 3, 'spread', { normalise: false, minRows: 1, seed: 0 });
    expect(g.groupRows).toEqual([8, 8, 8]);
    const byGroup = [0, 1, 2].map((i) =>
      Array.from(g.permutation).filter((r) => g.groupOf[r] === i),
    );
    for (let i = 0; i < 2; i++)
      expect(Math.max(...byGroup[i].map(std))).toBeLessThanOrEqual(
        Math.min(...byGroup[i + 1].map(std)),
      );
    const none = groupRows(w, rows, cols, 5, 'none', { normalise: true, minRows: 1, seed: 0 });
    expect(Array.from(none.permutation)).toEqual([...Array(rows).keys()]);
    expect(none.groupRows).toEqual([4, 5, 5, 5, 5]);
  });

  it('gives every group at least minRows rows', () => {
    const g = groupRows(w, rows, cols, 4, 'profile', { normalise: true, minRows: 6, seed: 1 });
    expect(g.groupRows).toEqual([6, 6, 6, 6]);
    expect(new Set(g.permutation).size).toBe(rows);
  });
});

for (const backend of backends) {
  describe(`JLCM on ${backend}`, () => {
    const cases: { shape: [number, number]; config: Partial<JlcmConfig> }[] = [
      { shape: [12, 16], config: { bits: 2, codebooks: 3 } },
      { shape: [8, 16], config: { bits: 3, codebooks: 2, clusterDim: 2, grouping: 'spread' } },
      {
        shape: [8, 12],
        config: { bits: 2, codebooks: 2, grouping: 'none', perChannelScale: false },
      },
    ];

    for (const { shape, config } of cases) {
      it(`hard forward = dequantize(palettize) = plain reference in original row order: ${JSON.stringify(config)}`, async () => {
        await useBackend(backend);
        const data = neurons(shape[0], shape[1], 7);
        const tensorsBefore = tf.memory().numTensors;
        const w = tf.tensor2d(data, shape);
        const jlcm = new JlcmTensor(shape, config);
        await jlcm.prepare(w);
        const out = jlcm.apply(w);
        const forward = (await out.data()) as Float32Array;
        const p = await jlcm.palettize(w);
        validatePalette(p);
        expect(p.lut.length).toBe(config.codebooks! * jlcm.k * (config.clusterDim ?? 1));
        expect(p.groupRows!.reduce((a, b) => a + b, 0)).toBe(shape[0]);
        expect(p.permutation === undefined).toBe(config.grouping === 'none');
        expect(p.scales === undefined).toBe(config.perChannelScale === false);
        expect(Array.from(dequantize(p))).toEqual(Array.from(forward)); // bit for bit
        const { layout } = await referenceLayout(jlcm);
        expect(maxRelError(forward, hardWeight(layout, nearestIndex(data, layout)))).toBeLessThan(
          1e-6,
        );
        tf.dispose([w, out]);
        jlcm.dispose();
        expect(tf.memory().numTensors).toBe(tensorsBefore);
      });
    }

    for (const [clusterDim, onBackend] of [
      [1, false],
      [2, false],
      [1, true],
      [2, true],
    ] as const) {
      it(`gradients of codebooks, scales and the straight-through mapping match finite differences (d = ${clusterDim}, ${onBackend ? 'a later prepare: mapping and J on the backend' : 'first prepare: on the host'})`, async () => {
        await useBackend(backend);
        const shape: [number, number] = [8, 12];
        let data = neurons(shape[0], shape[1], 11);
        const w = tf.variable(tf.tensor2d(data, shape));
        const jlcm = new JlcmTensor(shape, { bits: 2, codebooks: 2, clusterDim, tauScale: 4 });
        await jlcm.prepare(w);
        if (onBackend) {
          // an update of the weight and the codebooks, then the step's prepare (NearestEntry)
          data = data.map((x, i) => x + 0.004 * Math.sin(5 * i));
          w.assign(tf.tensor2d(data, shape));
          jlcm.codebooks.assign(jlcm.codebooks.mul(1.01));
          await jlcm.prepare(w);
        }
        const probe = Float64Array.from(neurons(shape[0], shape[1], 12), (x) => x * 50);
        const r = tf.tensor2d(Float32Array.from(probe), shape);
        // L = Σ R ⊙ W̃ + ½ Σ W̃²: quadratic in codebooks and scales, so central differences are exact
        const { grads } = tf.variableGrads(() => {
          const out = jlcm.apply(w);
          return out.mul(r).sum().add(out.square().sum().mul(0.5)) as tf.Scalar;
        }, [w, ...jlcm.variables()]);
        const { layout, tau } = await referenceLayout(jlcm);
        const index = nearestIndex(data, layout);
        const loss = (out: Float64Array) =>
          out.reduce((s, x, i) => s + probe[i] * x + 0.5 * x * x, 0);
        const fdCodebooks = finiteDifferences(
          (c) => loss(hardWeight({ ...layout, codebooks: c }, index)),
          layout.codebooks,
          1e-3,
        );
        const fdScales = finiteDifferences(
          (s) => loss(hardWeight({ ...layout, scales: s }, index)),
          layout.scales!,
          1e-4,
        );
        // the weight's gradient goes through the soft mapping, with the upstream gradient at the hard output
        const upstream = hardWeight(layout, index).map((x, i) => probe[i] + x);
        const fdWeight = finiteDifferences(
          (x) => softWeight(x, layout, tau).reduce((s, y, i) => s + upstream[i] * y, 0),
          data,
          1e-6,
        );
        const got = async (v: tf.Variable) => (await grads[v.name].data()) as Float32Array;
        expect(maxRelError(await got(jlcm.codebooks), fdCodebooks)).toBeLessThan(1e-4);
        expect(maxRelError(await got(jlcm.scales!), fdScales)).toBeLessThan(1e-4);
        expect(maxRelError(await got(w), fdWeight)).toBeLessThan(1e-3);
        expect(Math.max(...fdWeight.map(Math.abs))).toBeGreaterThan(0);
        tf.dispose([w, r, ...Object.values(grads)]);
        jlcm.dispose();
      });
    }

    for (const { rows, cols, d, k, groups, scaled } of [
      { rows: 24, cols: 32, d: 1, k: 4, groups: 3, scaled: true },
      { rows: 10, cols: 16, d: 2, k: 8, groups: 2, scaled: true },
      { rows: 12, cols: 48, d: 1, k: 16, groups: 4, scaled: false },
      { rows: 6, cols: 24, d: 4, k: 4, groups: 1, scaled: true },
    ]) {
      it(`the mapping and J on the backend equal the host's float64 mapWeights (d = ${d}, K = ${k}, ${groups} codebooks${scaled ? ', a zero scale' : ', no scales'})`, async () => {
        await useBackend(backend);
        const rnd = seededRandom(rows * cols + d * 7 + k);
        const weights = neurons(rows, cols, rows + k);
        // fp16-valued codebooks and scales, as the forward uses them
        const codebooks = roundToHalf(
          Float32Array.from({ length: groups * k * d }, () => 0.08 * (rnd() * 2 - 1)),
          'fp16',
        );
        const scales = scaled
          ? roundToHalf(
              Float32Array.from({ length: rows }, () => 0.5 + rnd()),
              'fp16',
            )
          : null;
        if (scales) scales[3] = 0; // x = 0 in that row
        const groupOf = Int32Array.from({ length: rows }, (_, r) => (r * 7) % groups);
        const tau = Array.from({ length: groups }, () => 1e-4 * (0.5 + rnd()));
        const layout = { rows, cols, d, k, groupOf };
        const host = mapWeights(weights, layout, codebooks, scales, tau);
        const w = tf.tensor2d(weights, [rows, cols]);
        const tensorsBefore = tf.memory().numTensors;
        const device = mapWeightsOnDevice(w, layout, codebooks, scales, tau);
        expect(device.index.dtype).toBe('int32');
        expect(device.jacobian.shape).toEqual(d === 1 ? [rows, cols] : [(rows * cols) / d, d, d]);
        expect(Array.from(await device.index.data())).toEqual(Array.from(host.index));
        const jacobian = (await device.jacobian.data()) as Float32Array;
        expect(maxRelError(jacobian, host.jacobian!)).toBeLessThan(1e-5);
        // the soft assignment is not degenerate: J varies and is positive somewhere
        expect(Math.max(...host.jacobian!)).toBeGreaterThan(0);
        tf.dispose([device.index, device.jacobian]);
        expect(tf.memory().numTensors).toBe(tensorsBefore);
        w.dispose();
      });
    }

    it('learns a mapping: the latent weights cross to the target codewords through the proximal step', async () => {
      await useBackend(backend);
      const shape: [number, number] = [8, 32];
      const start = neurons(shape[0], shape[1], 21);
      const w = tf.variable(tf.tensor2d(start, shape));
      const jlcm = new JlcmTensor(shape, { bits: 2, codebooks: 2 });
      await jlcm.prepare(w);
      // the target: the same codebooks and scales under the mapping of a nudged weight
      const nudged = tf.tensor2d(
        start.map((x, i) => x + 0.01 * Math.sin(7 * i)),
        shape,
      );
      await jlcm.prepare(nudged);
      const target = jlcm.apply(nudged);
      const optimizer = tf.train.adam(3e-3);
      const losses: number[] = [];
      let changed = 0;
      for (let step = 0; step < 20; step++) {
        await jlcm.prepare(w);
        if (step > 0) changed += (await jlcm.describe()).changedAssignments;
        const loss = optimizer.minimize(
          () => jlcm.apply(w).sub(target).square().mean() as tf.Scalar,
          true,
          [w, ...jlcm.variables()],
        )!;
        losses.push((await loss.data())[0]);
        loss.dispose();
      }
      expect(losses[losses.length - 1]).toBeLessThan(0.2 * losses[0]);
      expect(changed).toBeGreaterThan(0);
      await jlcm.prepare(w);
      const out = jlcm.apply(w);
      expect(Array.from(dequantize(await jlcm.palettize(w)))).toEqual(Array.from(await out.data()));
      tf.dispose([w, nudged, target, out]);
      optimizer.dispose();
      jlcm.dispose();
    });

    it('throws StateError before prepare and after an unprepared update; NonFiniteError on NaN', async () => {
      await useBackend(backend);
      const w = tf.variable(tf.tensor2d(neurons(4, 8, 5), [4, 8]));
      const jlcm = new JlcmTensor([4, 8], { bits: 1, codebooks: 2 });
      expect(() => jlcm.apply(w)).toThrow(StateError);
      await expect(jlcm.palettize(w)).rejects.toThrow(StateError);
      await jlcm.prepare(w);
      jlcm.codebooks.assign(jlcm.codebooks.add(0.1));
      expect(() => jlcm.apply(w)).toThrow(/changed since prepare/);
      const bad = neurons(4, 8, 5);
      bad[13] = Number.NaN;
      const nan = tf.tensor2d(bad, [4, 8]);
      await expect(jlcm.prepare(nan)).rejects.toThrow(NonFiniteError);
      await expect(jlcm.prepare(nan)).rejects.toThrow(/weight \[1, 5\]/);
      tf.dispose([w, nan]);
      jlcm.dispose();
    });
  });
}

describe('checkpoint state (cpu)', () => {
  it('getState/setState (through JSON) and the variables resume the same forward, bit for bit', async () => {
    await useBackend('cpu');
    const shape: [number, number] = [12, 16];
    const w = tf.tensor2d(neurons(...shape, 50), shape);
    const config = { bits: 2, codebooks: 3 };
    const first = new JlcmTensor(shape, config);
    expect(first.getState()).toEqual({ groups: null, tau: null });
    await first.prepare(w);
    const state = JSON.parse(JSON.stringify(first.getState()));
    const resumed = new JlcmTensor(shape, config);
    resumed.setState(state);
    first.variables().forEach((v, i) => resumed.variables()[i].assign(v));
    await Promise.all([first.prepare(w), resumed.prepare(w)]);
    const [a, b] = [first.apply(w), resumed.apply(w)];
    expect(await b.data()).toEqual(await a.data());
    expect(() => resumed.setState({ ...state, tau: [1, 2] })).toThrow(InvalidArgumentError);
    expect(() =>
      resumed.setState({
        ...state,
        groups: { ...state.groups, permutation: new Array(12).fill(0) },
      }),
    ).toThrow(/does not fit a \[12,16\] weight with 3 codebooks/);
    tf.dispose([w, a, b]);
    first.dispose();
    resumed.dispose();
  });
});

describe('export and model-wide config (cpu)', () => {
  it('multi-LUT palettes with permutations and scales reload bit-exactly through @edkm/palettized', async () => {
    await useBackend('cpu');
    const shapes = new Map<string, [number, number]>([
      ['a.weight', [24, 32]],
      ['b.weight', [16, 32]],
      ['c.weight', [8, 16]],
    ]);
    const weights = new Map(
      [...shapes].map(([name, shape], i) => [name, tf.tensor2d(neurons(...shape, 30 + i), shape)]),
    );
    const palettizer = new Palettizer(shapes, {
      global: { method: 'jlcm', bits: 3, codebooks: 3 },
      byName: {
        'b.weight': { bits: 2, clusterDim: 2, grouping: 'spread' },
        'c.weight': { method: 'dkm', bits: 2 },
      },
    });
    await palettizer.prepare(weights);
    const palettes = await palettizer.export(weights);
    expect(palettes.get('a.weight')!.permutation).toBeDefined();
    expect(palettes.get('c.weight')!.permutation).toBeUndefined();
    const dir = mkdtempSync(join(tmpdir(), 'jlcm-'));
    const dense = new Map([['norm.weight', { shape: [4], data: new Float32Array([1, 2, 3, 4]) }]]);
    writePalettized(join(dir, 'a'), dense, palettes);
    const file = new PalettizedFile(join(dir, 'a', 'model.safetensors'));
    for (const [name, p] of palettes) {
      expect(file.palette(name)).toEqual(p);
      expect(file.dequantizeAll().get(name)!.data).toEqual(dequantize(p));
    }
    writePalettized(
      join(dir, 'b'),
      dense,
      new Map(file.palettizedNames().map((n) => [n, file.palette(n)])),
    );
    file.close();
    expect(readFileSync(join(dir, 'b', 'model.safetensors'))).toEqual(
      readFileSync(join(dir, 'a', 'model.safetensors')),
    );
    tf.dispose([...weights.values()]);
    palettizer.dispose();
  });

  it('trains mixed jlcm/dkm layers through Palettizer.transform with Palettizer.variables()', async () => {
    await useBackend('cpu');
    const shapes = new Map<string, [number, number]>([
      ['q', [8, 16]],
      ['k', [8, 16]],
    ]);
    const weights = new Map(
      [...shapes].map(([name, shape], i) => [
        name,
        tf.variable(tf.tensor2d(neurons(...shape, 40 + i), shape)),
      ]),
    );
    const palettizer = new Palettizer(shapes, {
      global: { method: 'jlcm', bits: 2, codebooks: 2 },
      byName: { k: { method: 'dkm', bits: 2 } },
    });
    expect(palettizer.layers.get('q')).toBeInstanceOf(JlcmTensor);
    const extra = palettizer.variables();
    expect(extra).toEqual((palettizer.layers.get('q') as JlcmTensor).variables());
    await palettizer.prepare(weights);
    const { grads } = tf.variableGrads(
      () =>
        palettizer
          .transform('q', weights.get('q')!)
          .sum()
          .add(palettizer.transform('k', weights.get('k')!).square().sum()) as tf.Scalar,
      [...weights.values(), ...extra],
    );
    for (const v of [...weights.values(), ...extra]) expect(grads[v.name].shape).toEqual(v.shape);
    tf.dispose([...weights.values(), ...Object.values(grads)]);
    palettizer.dispose();
  });
});
