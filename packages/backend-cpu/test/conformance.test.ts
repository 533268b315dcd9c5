import { KernelNames, registerPlugin, tf } from '@edkm/core';
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
