import '../src/index';
import { BackendError, DecodeKernelNames, LinearKernelNames, type tf } from '@edkm/core';
import { conformanceCases, runConformance, testBackends } from '@edkm/core/testing';
import { describe, expect, it } from 'vitest';
import {
  getWebGPUDeviceInfo,
  setLinearRoute,
  setMatMulRoute,
  setPaletteGemv,
  setPaletteLut,
  setSubgroupAttention,
  withBindingCheck,
} from '../src/index';

const backends = await testBackends();

describe.skipIf(!backends.includes('webgpu'))('webgpu plugin', () => {
  it('starts and reports its adapter', () => {
    const info = getWebGPUDeviceInfo();
    expect(info).toBeDefined();
    expect(`${info?.vendor}${info?.description}${info?.device}`.length).toBeGreaterThan(0);
  });

  it('passes the conformance suite', async () => {
    // matMul through the plugin's GEMM even on a software adapter (where 'auto' takes tfjs's)
    setMatMulRoute('gemm');
    try {
      const report = await runConformance('webgpu');
      expect(report.results.length).toBeGreaterThan(10);
      expect(report.failures).toEqual([]);
    } finally {
      setMatMulRoute('auto');
    }
  }, 300_000);

  // the suite above takes the adapter's own shape ('auto'): run the linear kernels in both
  it.each(['reduce', 'rows', 'rows+pairs', 'serial', 'gemv', 'gemv+pairs', 'gemv+split'] as const)(
    'passes the linear kernels in the %s shape',
    async (shape) => {
      const linear: string[] = [LinearKernelNames.PaletteMatMul, LinearKernelNames.Bf16MatMul];
      const cases = conformanceCases().filter((c) => linear.includes(c.kernelName));
      const gemv = shape.startsWith('gemv');
      const route =
        shape === 'reduce' || shape === 'rows' || shape === 'serial'
          ? shape
          : shape === 'rows+pairs'
            ? 'rows'
            : 'auto';
      setLinearRoute(route);
      setPaletteLut(shape === 'rows+pairs' ? 'pairs' : 'lanes');
      // 'gemv': one row of x with K ≥ 2048 through the x-stationary GEMV, also on a software adapter
      setPaletteGemv(gemv ? 'on' : 'auto', {
        pairs: shape === 'gemv+pairs',
        split: shape === 'gemv+split' ? 2 : undefined,
      });
      try {
        const report = await runConformance('webgpu', cases);
        expect(report.results.length).toBe(cases.length);
        expect(cases.length).toBeGreaterThan(10);
        expect(report.failures).toEqual([]);
      } finally {
        setLinearRoute('auto');
        setPaletteLut('lanes');
        setPaletteGemv('auto');
      }
    },
    300_000,
  );
});

describe.skipIf(!backends.includes('webgpu'))('webgpu plugin: subgroup attention', () => {
  // the suite takes the adapter's own choice (the serial-loop kernel on a software adapter):
  // CachedAttention on subgroups here too (lavapipe's subgroups are 8 wide, the H200's 32)
  it('passes the cached-attention cases on subgroups', async () => {
    const cases = conformanceCases().filter(
      (c) => c.kernelName === DecodeKernelNames.CachedAttention,
    );
    setSubgroupAttention('on');
    try {
      const report = await runConformance('webgpu', cases);
      expect(cases.length).toBeGreaterThan(2);
      expect(report.results.length).toBe(cases.length);
      expect(report.failures).toEqual([]);
    } finally {
      setSubgroupAttention('auto');
    }
  }, 300_000);
});

describe('webgpu plugin: tensors over the device storage-binding limit', () => {
  const fakeBackend = (limit: number, disposed: object[]) =>
    ({
      device: { limits: { maxStorageBufferBindingSize: limit } },
      disposeData: (id: object) => disposed.push(id),
    }) as never;
  const info = (shape: number[]): tf.TensorInfo => ({ dataId: {}, shape, dtype: 'float32' });

  it('a kernel refuses an input too large to bind, naming the kernel, the tensor and the limit', () => {
    const kernel = withBindingCheck('EdkmGatherByCode', () => info([4]));
    const run = () =>
      kernel({ inputs: { x: info([64, 1024]) }, backend: fakeBackend(128 * 1024, []), attrs: {} });
    expect(run).toThrow(BackendError);
    expect(run).toThrow(
      /EdkmGatherByCode: its input 'x' \[64,1024\] is 256\.0 KiB, over this WebGPU device's 128\.0 KiB storage-binding limit; palettize the weight in row groups/,
    );
  });

  it('an output too large to bind is released and reported', () => {
    const disposed: object[] = [];
    const out = info([1024, 1024]);
    const kernel = withBindingCheck('EdkmGatherRows', () => out);
    expect(() =>
      kernel({
        inputs: { table: info([2, 2]) },
        backend: fakeBackend(2 ** 20, disposed),
        attrs: {},
      }),
    ).toThrow(/its output \[1024,1024\] is 4\.0 MiB, over this WebGPU device's 1\.0 MiB/);
    expect(disposed).toEqual([out.dataId]);
  });

  it('within the limit, the kernel runs unchanged', () => {
    const out = info([4]);
    expect(
      withBindingCheck(
        'K',
        () => out,
      )({ inputs: { a: info([4]) }, backend: fakeBackend(1024, []), attrs: {} }),
    ).toBe(out);
  });
});
