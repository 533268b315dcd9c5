import '../src/index';
import { Int8KernelNames } from '@edkm/core';
import { conformanceCases, runConformance, testBackends } from '@edkm/core/testing';
import { describe, expect, it } from 'vitest';
import {
  getWebGPUDeviceInfo,
  int8MatMulRoute,
  setInt8MatMulSpec,
  setInt8Route,
} from '../src/index';

const backends = await testBackends();

// EdkmInt8MatMul: the suite's int8 cases through each form the kernel has. Without subgroup
// matrices (lavapipe, or no EDKM_WEBGPU_UNSAFE=1) 'auto' is the plain loop; 'emulate' runs the
// tensor-core kernel's tiling with the subgroup-matrix calls in plain WGSL (shapes of whole tiles;
// the others still take the plain loop).
describe.skipIf(!backends.includes('webgpu'))('webgpu plugin: int8 matmul', () => {
  const cases = () => conformanceCases().filter((c) => c.kernelName === Int8KernelNames.Int8MatMul);

  it('reports whether subgroup matrices are on, and routes by shape', () => {
    const info = getWebGPUDeviceInfo();
    expect(typeof info?.subgroupMatrix).toBe('boolean');
    setInt8Route('emulate');
    try {
      expect(int8MatMulRoute(128, 128, 64)).toBe('emulate');
      expect(int8MatMulRoute(130, 128, 64)).toBe('plain'); // not whole 128×128 tiles
      expect(int8MatMulRoute(128, 128, 72)).toBe('plain'); // K not whole 32-byte slices
    } finally {
      setInt8Route('auto');
    }
    if (!info?.subgroupMatrix) expect(int8MatMulRoute(128, 128, 64)).toBe('plain');
  });

  it.each(['auto', 'plain', 'emulate'] as const)(
    'passes the int8 cases (%s)',
    async (route) => {
      setInt8Route(route);
      try {
        const report = await runConformance('webgpu', cases());
        expect(report.results.length).toBeGreaterThanOrEqual(6);
        expect(report.failures).toEqual([]);
      } finally {
        setInt8Route('auto');
      }
    },
    600_000,
  );

  it('runs another variant, emulated (register prefetch, two buffers unrolled)', async () => {
    setInt8Route('emulate');
    setInt8MatMulSpec({ stages: 2, unroll: true });
    try {
      const report = await runConformance('webgpu', cases());
      expect(report.failures).toEqual([]);
    } finally {
      setInt8Route('auto');
      setInt8MatMulSpec(undefined);
    }
  }, 600_000);
});
