import * as tf from '@tensorflow/tfjs-core';

/** Bytes held in one place (a tfjs backend, or 'host') now and at its peak. */
export interface LedgerEntry {
  bytes: number;
  peakBytes: number;
}

export interface LedgerReport {
  /** Per place: 'host' plus one entry per tfjs backend that was sampled. */
  places: Record<string, LedgerEntry>;
  /** Named counters (bytesOffloaded, copies, ...) that components add to. */
  counters: Record<string, number>;
}

/**
 * A memory ledger: how many bytes each backend and the host hold, with peaks. Backend bytes are
 * read from tfjs (`tf.memory()` of the active backend; `numBytesInGPU` on WebGPU); host bytes are
 * what components `allocateHost` / `freeHost` themselves (typed arrays they keep), so that a
 * benchmark can sum what a method really keeps rather than what the process happens to hold.
 */
export class MemoryLedger {
  private readonly places = new Map<string, LedgerEntry>();
  private readonly counters = new Map<string, number>();

  private entry(place: string): LedgerEntry {
    let e = this.places.get(place);
    if (!e) {
      e = { bytes: 0, peakBytes: 0 };
      this.places.set(place, e);
    }
    return e;
  }

  /** Records the active tfjs backend's current bytes; returns them. */
  sampleBackend(): number {
    const name = tf.getBackend();
    if (!name) return 0;
    const bytes = backendBytes();
    const e = this.entry(name);
    e.bytes = bytes;
    if (bytes > e.peakBytes) e.peakBytes = bytes;
    return bytes;
  }

  allocateHost(bytes: number, place = 'host'): void {
    const e = this.entry(place);
    e.bytes += bytes;
    if (e.bytes > e.peakBytes) e.peakBytes = e.bytes;
  }

  freeHost(bytes: number, place = 'host'): void {
    const e = this.entry(place);
    e.bytes = Math.max(0, e.bytes - bytes);
  }

  count(counter: string, amount = 1): void {
    this.counters.set(counter, (this.counters.get(counter) ?? 0) + amount);
  }

  /** Forgets peaks (current bytes stay): start of a measured region. */
  resetPeaks(): void {
    for (const e of this.places.values()) e.peakBytes = e.bytes;
  }

  report(): LedgerReport {
    return {
      places: Object.fromEntries([...this.places].map(([k, v]) => [k, { ...v }])),
      counters: Object.fromEntries(this.counters),
    };
  }
}

/**
 * Bytes the active backend holds for live tensors, each buffer once: device bytes on WebGPU, the
 * cpu plugin's own count on cpu. Backends that report neither fall back to tfjs's numBytes, which
 * counts every tensor object (a reshape or clone of a tensor counts again).
 */
export function backendBytes(): number {
  const info = tf.memory() as tf.MemoryInfo & {
    numBytesInGPU?: number;
    numBytesInBackend?: number;
  };
  return info.numBytesInGPU ?? info.numBytesInBackend ?? info.numBytes;
}

/**
 * Runs `fn` while sampling backend bytes after every kernel call, and returns its result with the
 * peak bytes seen above the bytes held at the start. Uses tfjs's profiler hook-free approach: the
 * engine's `numBytes` is sampled through a kernel-run listener.
 */
export async function measurePeakBytes<T>(
  fn: () => T | Promise<T>,
): Promise<{ result: T; peakExtraBytes: number }> {
  const engine = tf.engine() as unknown as {
    state: { numBytes: number };
    runKernelFunc: (...a: unknown[]) => unknown;
  };
  const start = backendBytes();
  let peak = start;
  const original = engine.runKernelFunc;
  engine.runKernelFunc = function (this: unknown, ...args: unknown[]) {
    const out = original.apply(this, args);
    const now = backendBytes();
    if (now > peak) peak = now;
    return out;
  };
  try {
    const result = await fn();
    const end = backendBytes();
    if (end > peak) peak = end;
    return { result, peakExtraBytes: peak - start };
  } finally {
    engine.runKernelFunc = original;
  }
}

/** The process-wide default ledger that packages report into. */
export const ledger = new MemoryLedger();
