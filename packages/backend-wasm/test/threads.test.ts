import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const child = fileURLToPath(new URL('./threads-child.ts', import.meta.url));
const tsx = fileURLToPath(new URL('../../../node_modules/.bin/tsx', import.meta.url));

function run(threads: number): { description: string; hashes: number[] } {
  const p = spawnSync(tsx, [child], {
    env: { ...process.env, EDKM_WASM_THREADS: String(threads) },
    encoding: 'utf8',
  });
  if (p.status !== 0) throw new Error(`child exited ${p.status}: ${p.stderr}`);
  const lines = p.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

describe('wasm plugin: the threaded build under Node', () => {
  it('runs XNNPACK on 2 threads with the single-threaded build’s exact values, and exits', () => {
    const one = run(1);
    const two = run(2);
    expect(one.description).toMatch(/SIMD, 1 thread\)/);
    expect(two.description).toMatch(/SIMD, 2 threads\)/);
    expect(two.hashes).toEqual(one.hashes);
  }, 120_000);

  it('EDKM_WASM_THREADS out of range is refused', () => {
    const p = spawnSync(tsx, [child], {
      env: { ...process.env, EDKM_WASM_THREADS: '0' },
      encoding: 'utf8',
    });
    expect(p.status).not.toBe(0);
    expect(p.stderr).toMatch(/EDKM_WASM_THREADS must be an integer in 1\.\.8/);
  }, 60_000);

  it('defaults to the logical cores (at most 8)', () => {
    const env = { ...process.env };
    env.EDKM_WASM_THREADS = undefined;
    const p = spawnSync(tsx, [child], { env, encoding: 'utf8' });
    const n = Math.min(8, availableParallelism());
    expect(p.stdout).toContain(`SIMD, ${n} thread${n === 1 ? '' : 's'}`);
  }, 60_000);
});
