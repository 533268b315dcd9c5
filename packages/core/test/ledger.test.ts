import '@edkm/backend-cpu';
import { describe, expect, it } from 'vitest';
import { MemoryLedger, measurePeakBytes, tf, useBackend } from '../src/index';

describe('memory ledger', () => {
  it('tracks host bytes, peaks and counters', () => {
    const l = new MemoryLedger();
    l.allocateHost(100);
    l.allocateHost(50);
    l.freeHost(120);
    l.count('copies');
    l.count('copies', 2);
    const r = l.report();
    expect(r.places.host).toEqual({ bytes: 30, peakBytes: 150 });
    expect(r.counters.copies).toBe(3);
    l.resetPeaks();
    expect(l.report().places.host.peakBytes).toBe(30);
  });

  it('samples backend bytes and measures the peak of a computation', async () => {
    await useBackend('cpu');
    const l = new MemoryLedger();
    const a = tf.ones([1000]);
    expect(l.sampleBackend()).toBeGreaterThanOrEqual(4000);
    const { result, peakExtraBytes } = await measurePeakBytes(() =>
      tf.tidy(() => {
        const big = tf.ones([10000]); // 40 kB, freed before the end
        return big.sum();
      }),
    );
    expect(peakExtraBytes).toBeGreaterThanOrEqual(40000);
    expect(l.report().places.cpu.peakBytes).toBeGreaterThanOrEqual(4000);
    a.dispose();
    result.dispose();
  });
});
