// Each public package installs alone from its packed tarball (with the tarballs of the @edkm
// packages it depends on) into an empty folder, and imports under ESM and CJS.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
interface Pkg {
  dir: string;
  name: string;
  deps: string[];
}
const pkgs: Pkg[] = readdirSync(join(root, 'packages'))
  .map((d) => join(root, 'packages', d))
  .filter((dir) => existsSync(join(dir, 'dist', 'index.js')))
  // published packages only (a private one is not released yet)
  .filter((dir) => !JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).private)
  .map((dir) => {
    const json = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    return {
      dir,
      name: json.name,
      deps: Object.keys(json.dependencies ?? {}).filter((d) => d.startsWith('@edkm/')),
    };
  });
const byName = new Map(pkgs.map((p) => [p.name, p]));
const tarballs = new Map<string, string>();
const work = mkdtempSync(join(tmpdir(), 'edkm-pack-'));

function closure(name: string, seen = new Set<string>()): Set<string> {
  if (seen.has(name)) return seen;
  seen.add(name);
  for (const d of byName.get(name)?.deps ?? []) closure(d, seen);
  return seen;
}

beforeAll(() => {
  for (const p of pkgs) {
    const out = execFileSync('pnpm', ['pack', '--pack-destination', work], {
      cwd: p.dir,
      encoding: 'utf8',
    });
    tarballs.set(p.name, out.trim().split('\n').pop()!.trim());
  }
}, 300_000);

describe.each(pkgs.map((p) => p.name))('%s', (name) => {
  it('installs from its tarball into an empty folder and imports (ESM and CJS)', () => {
    const dir = mkdtempSync(join(work, 'consumer-'));
    const needed = [...closure(name)];
    const files = Object.fromEntries(needed.map((n) => [n, `file:${tarballs.get(n)}`]));
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({
        name: 'consumer',
        private: true,
        dependencies: { [name]: files[name] },
        pnpm: { overrides: files },
      }),
    );
    execFileSync(
      'pnpm',
      ['install', '--prefer-offline', '--ignore-workspace', '--config.auto-install-peers=true'],
      { cwd: dir, stdio: 'pipe' },
    );
    const esm = execFileSync(
      'node',
      [
        '--input-type=module',
        '-e',
        `const m = await import('${name}'); console.log(Object.keys(m).length)`,
      ],
      { cwd: dir, encoding: 'utf8' },
    );
    const cjs = execFileSync(
      'node',
      ['-e', `console.log(Object.keys(require('${name}')).length)`],
      { cwd: dir, encoding: 'utf8' },
    );
    expect(Number(esm.trim())).toBeGreaterThan(0);
    expect(Number(cjs.trim())).toBe(Number(esm.trim()));
  }, 180_000);
});
