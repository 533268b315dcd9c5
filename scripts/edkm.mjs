#!/usr/bin/env node
// `pnpm edkm …` / `pnpm demo`: builds the app and its packages (turbo, cached: a second or two
// when nothing changed; the build log is shown only if it fails), then runs the edkm command.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const build = spawnSync(
  'pnpm',
  ['exec', 'turbo', 'run', 'build', '--filter=@edkm/app...', '--output-logs=errors-only'],
  { cwd: root, encoding: 'utf8' },
);
if (build.status !== 0) {
  process.stderr.write(`${build.stdout}${build.stderr}\nedkm: the build failed (above)\n`);
  process.exit(build.status ?? 1);
}
process.argv.splice(1, 1, 'edkm'); // argv[2..] are the command's arguments
await import(new URL('../apps/edkm/dist/bin.js', import.meta.url).href);
