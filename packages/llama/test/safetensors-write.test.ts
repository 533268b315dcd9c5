import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';

// the writer's system calls, with a switch that makes writes fail as on a full disk
const disk = vi.hoisted(() => ({ full: false, writes: 0 }));
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  return {
    ...fs,
    writeSync: (...args: Parameters<typeof fs.writeSync>) => {
      disk.writes++;
      if (disk.full && disk.writes > 2)
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), {
          code: 'ENOSPC',
        });
      return fs.writeSync(...args);
    },
  };
});

const { IOError, SafetensorsFile, writeSafetensors } = await import('../src/index');
const dir = mkdtempSync(join(tmpdir(), 'edkm-stw-'));
const tensors = {
  w: { dtype: 'F32' as const, shape: [256], data: new Float32Array(256).fill(1.25) },
  b: { dtype: 'U8' as const, shape: [3], data: Uint8Array.from([1, 2, 3]) },
};

afterEach(() => {
  disk.full = false;
  disk.writes = 0;
});

describe('writeSafetensors is atomic', () => {
  it('a full disk mid-write: IOError naming the file, the old file intact, no temp file left', () => {
    const path = join(dir, 'ckpt.safetensors');
    writeFileSync(path, 'the previous checkpoint');
    disk.full = true;
    expect(() => writeSafetensors(path, tensors)).toThrow(IOError);
    disk.writes = 0;
    expect(() => writeSafetensors(path, tensors)).toThrow(
      /cannot write .*ckpt\.safetensors: ENOSPC/,
    );
    expect(readFileSync(path, 'utf8')).toBe('the previous checkpoint');
    expect(readdirSync(dir)).toEqual(['ckpt.safetensors']);
  });

  it('a target that cannot be replaced (a non-empty folder) fails cleanly too', () => {
    writeFileSync(join(dir, 'keep'), 'x');
    expect(() => writeSafetensors(dir, tensors)).toThrow(IOError);
    expect(readFileSync(join(dir, 'keep'), 'utf8')).toBe('x');
    // the temp file lived beside the target, in its parent folder
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith(`${basename(dir)}.tmp-`))).toEqual([]);
  });

  it('after a failure the same call succeeds and reads back', () => {
    const path = join(dir, 'ok.safetensors');
    writeSafetensors(path, tensors, { step: '7' });
    const st = new SafetensorsFile(path);
    expect(st.metadata).toEqual({ step: '7' });
    expect(new Float32Array(st.read('w').buffer)[255]).toBe(1.25);
    st.close();
  });
});
