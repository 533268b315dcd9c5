import { KernelNames, registerPlugin, tf, useBackend } from '@edkm/core';
import { runConformance } from '@edkm/core/testing';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { cpuKernels } from '../src/index';

describe('cpu plugin', () => {
  it('passes the conformance suite', async () => {
    const report = await runConformance('cpu');
    expect(report.results.length).toBeGreaterThan(10);
    expect(report.failures).toEqual([]);
  });

  it('the conformance suite catches a deliberately broken kernel', async () => {
    tf.registerBackend('cpu-broken', () => new MathBackendCPU(), -1);
    const brokenGather: tf.KernelFunc = (args) => {
      const out = cpuKernels[0].kernelFunc(args) as tf.TensorInfo;
      const backend = args.backend as MathBackendCPU;
      const vals = backend.data.get(out.dataId).values as Float32Array;
      if (vals.length > 1) vals[vals.length - 1] += 1e-3; // one wrong element
      return out;
    };
    registerPlugin({
      name: 'cpu-broken',
      tfjsBackend: 'cpu-broken',
      priority: -1,
      init: () => true,
      kernels: cpuKernels.map((k) =>
        k.kernelName === KernelNames.GatherRows ? { ...k, kernelFunc: brokenGather } : k,
      ),
    });
    const report = await runConformance('cpu-broken');
    const failedKernels = new Set(report.failures.map((f) => f.kernelName));
    expect([...failedKernels]).toEqual([KernelNames.GatherRows]);
    expect(report.failures[0].message).toMatch(/element \d+: got .* expected/);
    tf.removeBackend('cpu-broken');
  });
});

describe('cpu plugin: UnsortedSegmentSum (the gather gradient) in O(N)', () => {
  it('equals oneHot(ids)ᵀ · x, drops out-of-range ids, keeps int32', async () => {
    await useBackend('cpu');
    const ids = [3, 0, 3, 7, -1, 2, 3, 9];
    const x = tf.randomNormal([ids.length, 5], 0, 1, 'float32', 7);
    const got = tf.unsortedSegmentSum(x, tf.tensor1d(ids, 'int32'), 8);
    const oneHot = tf.oneHot(tf.tensor1d(ids, 'int32'), 8).toFloat(); // -1 and 9 are all-zero rows
    const want = tf.matMul(oneHot, x, true, false);
    expect(got.shape).toEqual([8, 5]);
    const [g, w] = [await got.data(), await want.data()];
    g.forEach((v, i) => expect(v).toBeCloseTo(w[i], 5));
    const ints = tf.unsortedSegmentSum(
      tf.tensor1d([5, 6, 7], 'int32'),
      tf.tensor1d([1, 1, 0], 'int32'),
      2,
    );
    expect(ints.dtype).toBe('int32');
    expect(Array.from(await ints.data())).toEqual([7, 11]);
  });

  it('gives gather its gradient: d/dtable sum(gather(table, ids) * y)', async () => {
    await useBackend('cpu');
    const table = tf.randomNormal([6, 3], 0, 1, 'float32', 1);
    const ids = tf.tensor1d([1, 4, 1, 0], 'int32');
    const y = tf.randomNormal([4, 3], 0, 1, 'float32', 2);
    const grad = tf.grad((t: tf.Tensor) => tf.gather(t, ids).mul(y).sum())(table);
    const yv = (await y.array()) as number[][];
    const want = Array.from({ length: 6 }, () => [0, 0, 0]);
    [1, 4, 1, 0].forEach((r, i) => {
      for (let j = 0; j < 3; j++) want[r][j] += yv[i][j];
    });
    const got = (await grad.array()) as number[][];
    got.forEach((row, r) => row.forEach((v, j) => expect(v).toBeCloseTo(want[r][j], 5)));
  });
});

describe('cpu plugin memory accounting', () => {
  it('counts each live buffer once (views and clones share one), and frees with the last handle', async () => {
    const { backendBytes } = await import('@edkm/core');
    await useBackend('cpu');
    const start = backendBytes();
    const a = tf.zeros([1000]);
    const view = a.reshape([10, 100]);
    const copy = tf.clone(a);
    expect(backendBytes() - start).toBe(4000); // one float32 buffer, three tensors
    expect(tf.memory().numBytes).toBeGreaterThanOrEqual(12000); // tfjs's own count: per tensor
    const b = a.add(1);
    expect(backendBytes() - start).toBe(8000);
    tf.dispose([a, view]);
    expect(backendBytes() - start).toBe(8000); // `copy` still holds the buffer
    tf.dispose([copy, b]);
    expect(backendBytes()).toBe(start);
  });
});
