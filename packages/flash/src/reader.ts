import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { IOError, StateError } from '@edkm/core';
import type { ByteRange } from './layout';
import { alignRange } from './plan';

export interface ReaderOptions {
  /**
   * Read with O_DIRECT (Linux): no page cache, every read goes to the device. Reads are widened
   * to `align`-byte boundaries into aligned buffers and counted at the widened size.
   */
  direct?: boolean;
  /** Block alignment for O_DIRECT (default 4096). */
  align?: number;
}

export interface ReaderStats {
  /** Reads issued to the file (after merging). */
  reads: number;
  /** Bytes transferred (aligned in direct mode). */
  bytesRead: number;
  /** Bytes asked for. */
  requestedBytes: number;
}

/** Views of the bytes of each requested range; `release()` hands the buffer back for reuse. */
export interface ReadBatch {
  views: Uint8Array[];
  release(): void;
}

interface Arena {
  buffer: Buffer;
  /** Offset of the first usable (aligned) byte, found by the first O_DIRECT read; -1 = unknown. */
  base: number;
}

/**
 * Reads byte ranges of one file concurrently (FileHandle.read at offsets, on libuv's thread pool),
 * into reusable buffers. With O_DIRECT, buffers must be block-aligned in memory: JavaScript cannot
 * see addresses, so the first read into a new buffer probes the 16-byte steps of its first block
 * (a misaligned O_DIRECT read fails with EINVAL without touching the device).
 */
export class RangeReader {
  readonly path: string;
  readonly direct: boolean;
  readonly align: number;
  readonly stats: ReaderStats = { reads: 0, bytesRead: 0, requestedBytes: 0 };
  private readonly handle: FileHandle;
  private readonly free: Arena[] = [];
  private lastBase = 0;
  private closed = false;

  private constructor(path: string, handle: FileHandle, direct: boolean, align: number) {
    this.path = path;
    this.handle = handle;
    this.direct = direct;
    this.align = align;
  }

  static async open(path: string, opts: ReaderOptions = {}): Promise<RangeReader> {
    const direct = opts.direct ?? false;
    if (direct && constants.O_DIRECT === undefined)
      throw new IOError('O_DIRECT is not available on this platform');
    try {
      const flags = constants.O_RDONLY | (direct ? constants.O_DIRECT : 0);
      return new RangeReader(path, await open(path, flags), direct, opts.align ?? 4096);
    } catch (err) {
      throw new IOError(
        `cannot open ${path}${direct ? ' with O_DIRECT' : ''}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  /** Reads every range (ascending, not overlapping) at once; one view per range. */
  async read(ranges: readonly ByteRange[]): Promise<ReadBatch> {
    if (this.closed) throw new StateError(`${this.path}: the reader is closed`);
    // direct reads widen to blocks; neighbours that then touch become one read
    const reads: ByteRange[] = [];
    for (const r of ranges) {
      const a = this.direct ? alignRange(r, this.align) : { ...r };
      const last = reads[reads.length - 1];
      if (last && a.offset <= last.offset + last.length)
        last.length = Math.max(last.length, a.offset + a.length - last.offset);
      else reads.push(a);
    }
    const total = reads.reduce((s, r) => s + r.length, 0);
    const arena = this.take(total);
    const starts: number[] = [];
    let at = 0;
    for (const r of reads) {
      starts.push(at);
      at += r.length;
    }
    try {
      let first = 0;
      if (arena.base < 0 && reads.length) {
        arena.base = await this.probe(arena.buffer, reads[0]);
        first = 1;
      }
      await Promise.all(
        reads.slice(first).map((r, k) => this.readFully(arena, starts[k + first], r)),
      );
    } catch (err) {
      this.free.push(arena);
      throw err;
    }
    this.stats.reads += reads.length;
    this.stats.bytesRead += total;
    const views: Uint8Array[] = [];
    let k = 0;
    for (const r of ranges) {
      this.stats.requestedBytes += r.length;
      while (r.offset >= reads[k].offset + reads[k].length) k++;
      const begin = arena.base + starts[k] + r.offset - reads[k].offset;
      views.push(new Uint8Array(arena.buffer.buffer, arena.buffer.byteOffset + begin, r.length));
    }
    let released = false;
    return {
      views,
      release: () => {
        if (!released) this.free.push(arena);
        released = true;
      },
    };
  }

  private take(bytes: number): Arena {
    const i = this.free.findIndex(
      (a) => a.buffer.length - Math.max(a.base, 0) - this.align >= bytes,
    );
    if (i >= 0) return this.free.splice(i, 1)[0];
    const size = Math.max(bytes, 1 << 16) + 2 * this.align;
    return { buffer: Buffer.allocUnsafeSlow(size), base: this.direct ? -1 : 0 };
  }

  /** The first read into a new direct buffer, at each 16-byte step until the address is aligned. */
  private async probe(buffer: Buffer, r: ByteRange): Promise<number> {
    const candidates = [this.lastBase];
    for (let k = 0; k < this.align; k += 16) if (k !== this.lastBase) candidates.push(k);
    for (const base of candidates) {
      try {
        await this.readFully({ buffer, base }, 0, r);
        this.lastBase = base;
        return base;
      } catch (err) {
        if (
          (err as NodeJS.ErrnoException).cause &&
          (err as { cause: NodeJS.ErrnoException }).cause.code === 'EINVAL'
        )
          continue;
        throw err;
      }
    }
    throw new IOError(`${this.path}: no buffer alignment works for O_DIRECT`);
  }

  private async readFully(arena: Arena, start: number, r: ByteRange): Promise<void> {
    let done = 0;
    try {
      while (done < r.length) {
        const { bytesRead } = await this.handle.read(
          arena.buffer,
          arena.base + start + done,
          r.length - done,
          r.offset + done,
        );
        if (bytesRead === 0) break;
        done += bytesRead;
        if (this.direct && bytesRead % this.align !== 0) break; // end of file
      }
    } catch (err) {
      throw new IOError(
        `${this.path}: read of ${r.length} bytes at ${r.offset} failed: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    // an O_DIRECT read may stop at the end of the file inside the last block
    if (done < r.length && !(this.direct && r.offset + done >= (await this.size())))
      throw new IOError(
        `${this.path}: short read, ${done} of ${r.length} bytes at ${r.offset} (truncated?)`,
      );
  }

  private sizeCache = -1;
  private async size(): Promise<number> {
    if (this.sizeCache < 0) this.sizeCache = (await this.handle.stat()).size;
    return this.sizeCache;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}
