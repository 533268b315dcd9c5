#!/usr/bin/env node
// Runs the whole vitest suite and ends with one plain line "N passed, N failed" (tests counted),
// so that a run which executed nothing is visible. Extra arguments go to vitest.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'edkm-test-'));
const report = join(dir, 'vitest.json');
// testBackends() writes here why a backend's tests were skipped (e.g. WebGPU without Vulkan)
const skipLog = join(dir, 'skipped-backends.log');
const run = spawnSync(
  'pnpm',
  [
    'exec',
    'vitest',
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${report}`,
    ...process.argv.slice(2),
  ],
  { stdio: 'inherit', env: { ...process.env, EDKM_TEST_SKIP_LOG: skipLog } },
);
let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const json = JSON.parse(readFileSync(report, 'utf8'));
  passed = json.numPassedTests;
  // a file that failed without a failing test (it could not load, or a hook threw) counts once
  const fileErrors = (json.testResults ?? []).filter(
    (r) => r.status === 'failed' && !(r.assertionResults ?? []).some((a) => a.status === 'failed'),
  ).length;
  failed = json.numFailedTests + fileErrors;
  skipped = json.numPendingTests + (json.numTodoTests ?? 0);
} catch {
  failed = Math.max(failed, 1);
}
// one line per backend that did not start: its tests were skipped, and why
if (existsSync(skipLog)) {
  const lines = readFileSync(skipLog, 'utf8').trim().split('\n').filter(Boolean);
  const files = new Map();
  for (const line of lines) files.set(line, (files.get(line) ?? 0) + 1);
  for (const [line, n] of files) {
    const plugin = line.slice(0, line.indexOf(':'));
    console.log(
      `skipped the ${plugin} tests of ${n} test file${n === 1 ? '' : 's'}: ${line.slice(plugin.length + 2)} (EDKM_TEST_BACKENDS=cpu,wasm,${plugin} makes this an error)`,
    );
  }
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(run.status === 0 && failed === 0 && passed > 0 ? 0 : 1);
