// Builds the page into dist/: the bundle (esbuild, for browsers, Node's built-ins stubbed out by
// node-stub.mjs) and index.html.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { nodeStub } from './node-stub.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'dist');
mkdirSync(out, { recursive: true });

const result = await build({
  entryPoints: [join(here, 'src/main.ts')],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  outfile: join(out, 'main.js'),
  sourcemap: true,
  minify: true,
  metafile: true,
  logLevel: 'warning',
  plugins: [nodeStub],
  define: { 'process.env.NODE_ENV': '"production"' },
});
copyFileSync(join(here, 'index.html'), join(out, 'index.html'));
const bytes = Object.values(result.metafile.outputs).reduce((a, o) => a + o.bytes, 0);
console.log(`apps/web: dist/ (${(bytes / 1e6).toFixed(1)} MB with source maps)`);
