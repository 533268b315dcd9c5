import '@edkm/backend-cpu';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NonFiniteError, tf, useBackend } from '@edkm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, clipByGlobalNorm, learningRate, writeLossPlot } from '../src/index';

beforeAll(async () => {
  await useBackend('cpu');
});

/** Plain float64 AdamW step (the reference). */
function adamwReference(
  w: number[],
  g: number[][],
  lr: number,
  wd: number,
  b1 = 0.9,
  b2 = 0.999,
  eps = 1e-8,
): number[] {
  const m = w.map(() => 0);
  const v = w.map(() => 0);
  const out = [...w];
  g.forEach((grad, step) => {
    const t = step + 1;
    for (let i = 0; i < out.length; i++) {
      m[i] = b1 * m[i] + (1 - b1) * grad[i];
      v[i] = b2 * v[i] + (1 - b2) * grad[i] ** 2;
      const update = m[i] / (1 - b1 ** t) / (Math.sqrt(v[i] / (1 - b2 ** t)) + eps);
      out[i] = out[i] * (1 - lr * wd) - lr * update;
    }
  });
  return out;
}

describe('AdamW', () => {
  it('matches a plain reference over three steps, with weight decay', async () => {
    const w0 = [0.5, -1, 2];
    const grads = [
      [0.1, -0.2, 0.3],
      [0.05, 0.1, -0.4],
      [-0.3, 0.2, 0.1],
    ];
    const w = tf.variable(tf.tensor1d(w0));
    const opt = new AdamW({ weightDecay: 0.1 });
    for (const g of grads) opt.apply(new Map([['w', w]]), { w: tf.tensor1d(g) }, 0.01);
    const expected = adamwReference(w0, grads, 0.01, 0.1);
    const got = Array.from(await w.data());
    got.forEach((x, i) => expect(x).toBeCloseTo(expected[i], 6));
  });

  it('continues exactly from a saved state', async () => {
    const a = tf.variable(tf.tensor1d([1, 2]));
    const b = tf.variable(tf.tensor1d([1, 2]));
    const optA = new AdamW();
    optA.apply(new Map([['p', a]]), { p: tf.tensor1d([0.5, -0.5]) }, 0.1);
    b.assign(a);
    const optB = new AdamW();
    optB.setState(await optA.getState(), new Map([['p', [2]]]));
    optA.apply(new Map([['p', a]]), { p: tf.tensor1d([0.2, 0.1]) }, 0.1);
    optB.apply(new Map([['p', b]]), { p: tf.tensor1d([0.2, 0.1]) }, 0.1);
    expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
    const state = await optA.getState();
    expect(() => optB.setState(state, new Map())).toThrow(/unknown weight 'p'/);
  });
});

describe('schedule and clipping', () => {
  it('warms up linearly, then decays by a cosine to minRatio', () => {
    const opts = { lr: 1e-3, warmupSteps: 10, totalSteps: 110, minRatio: 0.1 };
    expect(learningRate(0, opts)).toBeCloseTo(1e-4);
    expect(learningRate(9, opts)).toBeCloseTo(1e-3);
    expect(learningRate(60, opts)).toBeCloseTo(1e-3 * (0.1 + 0.9 * 0.5));
    expect(learningRate(110, opts)).toBeCloseTo(1e-4);
  });

  it('clips by the global norm and refuses non-finite gradients', async () => {
    const grads = { a: tf.tensor1d([3, 0]), b: tf.tensor1d([0, 4]) };
    expect(await clipByGlobalNorm(grads, 1)).toBeCloseTo(5);
    expect(Array.from(await grads.a.data())[0]).toBeCloseTo(0.6);
    expect(Array.from(await grads.b.data())[1]).toBeCloseTo(0.8);
    await expect(clipByGlobalNorm({ a: tf.tensor1d([Number.NaN]) }, 1)).rejects.toThrow(
      /training diverged/,
    );
    await expect(clipByGlobalNorm({ a: tf.tensor1d([Number.NaN]) }, 1)).rejects.toThrow(
      NonFiniteError,
    );
  });
});

describe('loss plot', () => {
  it('writes an SVG line chart', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'edkm-plot-')), 'loss.svg');
    const points = Array.from({ length: 20 }, (_, step) => ({
      step,
      loss: 4 - Math.log1p(step),
      series: 'train',
    }));
    await writeLossPlot(path, points, 'loss');
    const svg = readFileSync(path, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('<path');
  });
});
