import '../src/index';
import { runConformance, testBackends } from '@edkm/core/testing';
import { describe, expect, it } from 'vitest';
import { getWebGPUDeviceInfo } from '../src/index';

const backends = await testBackends();

describe.skipIf(!backends.includes('webgpu'))('webgpu plugin', () => {
  it('starts and reports its adapter', () => {
    const info = getWebGPUDeviceInfo();
    expect(info).toBeDefined();
    expect(`${info?.vendor}${info?.description}${info?.device}`.length).toBeGreaterThan(0);
  });

  it('passes the conformance suite', async () => {
    const report = await runConformance('webgpu');
    expect(report.results.length).toBeGreaterThan(10);
    expect(report.failures).toEqual([]);
  });
});
