import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { FormatError, IOError } from './errors';

/**
 * Writes `path` atomically: `fill(fd)` writes the contents into a temporary file next to it, which
 * is fsynced (unless `durable` is false: scratch files), closed and renamed over `path`, so a
 * reader sees the old file or the whole new one, never a part. On any failure the temporary file
 * is removed; a FormatError from `fill` passes through, anything else becomes an IOError.
 */
export function writeFileAtomic(
  path: string,
  fill: (fd: number) => void,
  opts: { durable?: boolean } = {},
): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'w');
    fill(fd);
    if (opts.durable !== false) fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    if (err instanceof FormatError) throw err;
    throw new IOError(`cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Writes all of `bytes` to `fd`: at the file's current offset, or from `position` when given. */
export function writeFully(fd: number, bytes: Uint8Array, position?: number): void {
  for (let at = 0; at < bytes.length; )
    at +=
      position === undefined
        ? writeSync(fd, bytes, at, bytes.length - at)
        : writeSync(fd, bytes, at, bytes.length - at, position + at);
}
