// Times the page's kernels in headless chromium (SwiftShader where there is no GPU), per shape of
// the linear kernels; prints one JSON object. Usage (after pnpm build):
//   node apps/web/bench/kernels.mjs [--routes serial,reduce] [--rows 15] [--reps 5]
// (the first run exports the tiny model into dist/model/, as `pnpm web` does, and prints its size)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import puppeteer from 'puppeteer-core';
import { nodeStub } from '../node-stub.mjs';
import { ensureTinyExport, serveStatic } from '../serve.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const routes = arg('routes', 'serial,reduce').split(',');
const rows = Number(arg('rows', '15'));
const reps = Number(arg('reps', '5'));
const chromium = process.env.EDKM_CHROMIUM ?? '/usr/bin/chromium';

const root = mkdtempSync(join(tmpdir(), 'edkm-web-kernels-'));
await build({
  entryPoints: [join(here, 'kernels.ts')],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  outfile: join(root, 'kernels.js'),
  plugins: [nodeStub],
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
});
writeFileSync(
  join(root, 'index.html'),
  '<!doctype html><script type="module" src="kernels.js"></script>',
);
ensureTinyExport(join(here, '../dist/model'));
const { cpSync } = await import('node:fs');
cpSync(join(here, '../dist/model'), join(root, 'model'), { recursive: true });

const { server, url } = await serveStatic(root);
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ['--no-sandbox', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'],
});
try {
  const page = await browser.newPage();
  await page.goto(url);
  await page.waitForFunction('globalThis.kernels', { timeout: 60_000 });
  await page.evaluate('globalThis.kernels.ready');
  const results = [];
  for (const route of routes)
    results.push(
      await page.evaluate((r, n, k) => globalThis.kernels.run(r, n, k), route, rows, reps),
    );
  console.log(JSON.stringify({ bench: 'web-kernels', rows, reps, results }, null, 2));
} finally {
  await browser.close();
  server.close();
  rmSync(root, { recursive: true, force: true });
}
