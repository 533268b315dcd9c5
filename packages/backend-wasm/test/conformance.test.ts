import { useBackend } from '@edkm/core';
import { runConformance } from '@edkm/core/testing';
import { describe, expect, it } from 'vitest';
import '../src/index';

describe('wasm plugin', () => {
  it('passes the conformance suite', async () => {
    const report = await runConformance('wasm');
    expect(report.results.length).toBeGreaterThan(10);
    expect(report.failures).toEqual([]);
  });

  it('says what it runs on', async () => {
    const selection = await useBackend('wasm');
    expect(selection.description).toMatch(/^tfjs wasm \(XNNPACK/);
  });
});
