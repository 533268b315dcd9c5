import { InvalidArgumentError } from '@edkm/core';
import type { ByteRange } from './layout';

/** One read of the file, covering the requests [first, first + count). */
export interface PlannedRead extends ByteRange {
  first: number;
  count: number;
}

/**
 * Merges byte ranges (ascending, not overlapping) into reads: a request joins the previous read
 * when the gap between them is at most `maxGapBytes` (the gap is read and thrown away). Fewer,
 * larger reads cost less on flash, whose throughput grows with the read size.
 */
export function planReads(requests: readonly ByteRange[], maxGapBytes = 0): PlannedRead[] {
  if (!(maxGapBytes >= 0))
    throw new InvalidArgumentError(`maxGapBytes must be ≥ 0, got ${maxGapBytes}`);
  const reads: PlannedRead[] = [];
  let current: PlannedRead | undefined;
  let end = -1;
  requests.forEach((r, i) => {
    if (!(r.length > 0) || r.offset < 0)
      throw new InvalidArgumentError(`request ${i} (${r.offset}+${r.length}) is empty or negative`);
    if (r.offset < end)
      throw new InvalidArgumentError(
        `request ${i} at ${r.offset} overlaps or precedes the one before`,
      );
    if (current && r.offset - end <= maxGapBytes) {
      current.length = r.offset + r.length - current.offset;
      current.count++;
    } else {
      current = { offset: r.offset, length: r.length, first: i, count: 1 };
      reads.push(current);
    }
    end = r.offset + r.length;
  });
  return reads;
}

/** The pieces of each request inside the buffers of its planned read. */
export function splitReads(
  requests: readonly ByteRange[],
  reads: readonly PlannedRead[],
  buffers: readonly Uint8Array[],
): Uint8Array[] {
  const out: Uint8Array[] = new Array(requests.length);
  reads.forEach((read, k) => {
    for (let i = read.first; i < read.first + read.count; i++) {
      const at = requests[i].offset - read.offset;
      out[i] = buffers[k].subarray(at, at + requests[i].length);
    }
  });
  return out;
}

/** A storage device as the cost model sees it: a fixed cost per read plus a transfer rate. */
export interface StorageDevice {
  /** Seconds of latency per read (flash access + request overhead). */
  readLatencySeconds: number;
  /** Reads in flight at once (threads / queue depth): latencies overlap by this much. */
  parallelReads: number;
  /** Sequential throughput, bytes per second. */
  bytesPerSecond: number;
}

/**
 * An NVMe SSD read by several threads, as in the paper (~6 GB/s sequential, ~80 µs per random
 * read, 32 threads); with one thread small random reads reach only a fraction of the bandwidth.
 */
export const NVME_SSD: StorageDevice = {
  readLatencySeconds: 80e-6,
  parallelReads: 32,
  bytesPerSecond: 6e9,
};

export interface ReadCost {
  reads: number;
  bytes: number;
  meanReadBytes: number;
  /** Modelled seconds: reads × latency / parallel reads + bytes / throughput. */
  seconds: number;
}

/** The cost model of a list of reads on a device. */
export function readCost(reads: readonly ByteRange[], device: StorageDevice = NVME_SSD): ReadCost {
  const bytes = reads.reduce((s, r) => s + r.length, 0);
  return {
    reads: reads.length,
    bytes,
    meanReadBytes: reads.length ? bytes / reads.length : 0,
    seconds: readSeconds(reads.length, bytes, device),
  };
}

/** The cost model's seconds for `reads` reads of `bytes` bytes in all. */
export function readSeconds(
  reads: number,
  bytes: number,
  device: StorageDevice = NVME_SSD,
): number {
  return (reads * device.readLatencySeconds) / device.parallelReads + bytes / device.bytesPerSecond;
}

/** The gap worth reading rather than paying another read: the read's share of latency × throughput. */
export function breakEvenGapBytes(device: StorageDevice = NVME_SSD): number {
  return Math.floor((device.readLatencySeconds / device.parallelReads) * device.bytesPerSecond);
}

/** `r` widened to `align`-byte boundaries (what an O_DIRECT read transfers). */
export function alignRange(r: ByteRange, align: number): ByteRange {
  const offset = Math.floor(r.offset / align) * align;
  const end = Math.ceil((r.offset + r.length) / align) * align;
  return { offset, length: end - offset };
}
