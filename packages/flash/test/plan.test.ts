import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ByteRange,
  NVME_SSD,
  RangeReader,
  alignRange,
  breakEvenGapBytes,
  planReads,
  readCost,
  splitReads,
} from '../src/index';
import { tempDir } from './helpers';

/** Ascending, non-overlapping ranges from sorted distinct ids of fixed-size blocks (like neurons). */
const requestsArb = fc
  .tuple(
    fc.uniqueArray(fc.integer({ min: 0, max: 300 }), { maxLength: 60 }),
    fc.integer({ min: 1, max: 40 }),
    fc.integer({ min: 0, max: 100 }),
  )
  .map(([ids, size, base]) =>
    [...ids].sort((a, b) => a - b).map((id) => ({ offset: base + id * size, length: size })),
  );

/**
 * The reference: mark the requested bytes, then walk the bytes once; a read ends where the next
 * requested byte is more than `gap` bytes away.
 */
function bruteForce(requests: ByteRange[], gap: number): ByteRange[] {
  const end = Math.max(0, ...requests.map((r) => r.offset + r.length));
  const wanted = new Uint8Array(end);
  for (const r of requests) wanted.fill(1, r.offset, r.offset + r.length);
  const out: ByteRange[] = [];
  let open: ByteRange | undefined;
  let lastWanted = Number.NEGATIVE_INFINITY;
  for (let b = 0; b < end; b++) {
    if (!wanted[b]) continue;
    if (open && b - lastWanted - 1 <= gap) open.length = b + 1 - open.offset;
    else {
      open = { offset: b, length: 1 };
      out.push(open);
    }
    lastWanted = b;
  }
  return out;
}

describe('planReads', () => {
  it('equals the byte-walking reference, and covers every request exactly once', () => {
    fc.assert(
      fc.property(requestsArb, fc.integer({ min: 0, max: 120 }), (requests, gap) => {
        const reads = planReads(requests, gap);
        // touching requests are one run of bytes for the reference: compare at gap ≥ 0 by bytes
        expect(reads.map(({ offset, length }) => ({ offset, length }))).toEqual(
          bruteForce(requests, gap),
        );
        let next = 0;
        for (const r of reads) {
          expect(r.first).toBe(next);
          next += r.count;
          const last = requests[r.first + r.count - 1];
          expect(r.offset).toBe(requests[r.first].offset);
          expect(r.offset + r.length).toBe(last.offset + last.length);
        }
        expect(next).toBe(requests.length);
        // read bytes = requested + the gaps merged over
        const cost = readCost(reads);
        expect(cost.bytes).toBeGreaterThanOrEqual(requests.reduce((s, r) => s + r.length, 0));
        expect(cost.reads).toBe(reads.length);
      }),
      { numRuns: 300 },
    );
  });

  it('merges more with a larger gap, and never reads fewer bytes than asked', () => {
    const reqs = [0, 1, 3, 7, 8].map((i) => ({ offset: i * 10, length: 10 }));
    expect(planReads(reqs, 0).map((r) => [r.offset, r.length])).toEqual([
      [0, 20],
      [30, 10],
      [70, 20],
    ]);
    expect(planReads(reqs, 10).map((r) => [r.offset, r.length])).toEqual([
      [0, 40],
      [70, 20],
    ]);
    expect(planReads(reqs, 30)).toHaveLength(1);
  });

  it('rejects unsorted, overlapping or empty requests', () => {
    expect(() =>
      planReads([
        { offset: 10, length: 5 },
        { offset: 0, length: 5 },
      ]),
    ).toThrow(/overlaps or precedes/);
    expect(() =>
      planReads([
        { offset: 0, length: 10 },
        { offset: 5, length: 5 },
      ]),
    ).toThrow(/overlaps/);
    expect(() => planReads([{ offset: 0, length: 0 }])).toThrow(/empty/);
    expect(() => planReads([], -1)).toThrow(/maxGapBytes/);
  });

  it('splitReads hands each request its own bytes', () => {
    const file = Uint8Array.from({ length: 200 }, (_, i) => i);
    const reqs = [2, 3, 9].map((i) => ({ offset: i * 10, length: 10 }));
    const reads = planReads(reqs, 50);
    const pieces = splitReads(
      reqs,
      reads,
      reads.map((r) => file.subarray(r.offset, r.offset + r.length)),
    );
    expect(pieces.map((p) => p[0])).toEqual([20, 30, 90]);
    expect(pieces.every((p) => p.length === 10)).toBe(true);
  });
});

describe('cost model', () => {
  it('charges latency per read and bytes over throughput', () => {
    const cost = readCost(
      [
        { offset: 0, length: 6000 },
        { offset: 10000, length: 6000 },
      ],
      NVME_SSD,
    );
    expect(cost.meanReadBytes).toBe(6000);
    expect(cost.seconds).toBeCloseTo((2 * 80e-6) / 32 + 12000 / 6e9, 12);
    // merging two reads over a gap below the break-even point costs less
    const gap = breakEvenGapBytes() / 2;
    const apart = readCost([
      { offset: 0, length: 1000 },
      { offset: 1000 + gap, length: 1000 },
    ]);
    const merged = readCost([{ offset: 0, length: 2000 + gap }]);
    expect(merged.seconds).toBeLessThan(apart.seconds);
  });

  it('aligns ranges outwards to blocks', () => {
    expect(alignRange({ offset: 5000, length: 100 }, 4096)).toEqual({ offset: 4096, length: 4096 });
    expect(alignRange({ offset: 4000, length: 200 }, 4096)).toEqual({ offset: 0, length: 8192 });
    expect(alignRange({ offset: 8192, length: 4096 }, 4096)).toEqual({
      offset: 8192,
      length: 4096,
    });
  });
});

describe('RangeReader', () => {
  const dir = tempDir('reader');
  const path = join(dir, 'data.bin');
  const data = Uint8Array.from({ length: 50_000 }, (_, i) => (i * 31 + (i >> 8)) & 255);
  writeFileSync(path, data);
  const ranges = [
    { offset: 0, length: 10 },
    { offset: 100, length: 3000 },
    { offset: 4000, length: 200 }, // shares a block with the one before when aligned
    { offset: 20_001, length: 9 },
    { offset: 49_990, length: 10 }, // ends at the end of the file, inside a block
  ];

  for (const direct of [false, true])
    it(`reads every range's bytes${direct ? ' with O_DIRECT' : ''}`, async (ctx) => {
      let reader: RangeReader;
      try {
        reader = await RangeReader.open(path, { direct });
      } catch (err) {
        if (direct) return ctx.skip(); // O_DIRECT is not supported on every filesystem (tmpfs)
        throw err;
      }
      for (let round = 0; round < 2; round++) {
        const batch = await reader.read(ranges);
        batch.views.forEach((v, i) =>
          expect(v).toEqual(data.subarray(ranges[i].offset, ranges[i].offset + ranges[i].length)),
        );
        batch.release();
      }
      // direct: blocks 0 (0..4096 covers the first three ranges → one read), 4, 12: three reads
      expect(reader.stats.reads).toBe(direct ? 6 : 10);
      expect(reader.stats.requestedBytes).toBe(2 * 3229);
      if (direct) expect(reader.stats.bytesRead).toBe(2 * 4096 * 4);
      await reader.close();
      await expect(reader.read(ranges)).rejects.toThrow(/closed/);
    });

  it('a read past the end of the file is an IOError', async () => {
    const reader = await RangeReader.open(path);
    await expect(reader.read([{ offset: 49_000, length: 5000 }])).rejects.toThrow(/short read/);
    await reader.close();
  });
});
