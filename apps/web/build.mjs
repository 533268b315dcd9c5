// Builds the page into dist/: the bundle (esbuild, for browsers) and index.html. Node's built-in
// modules are replaced by a stub whose functions throw: the code paths the page runs never call
// them (the model comes in as bytes), and a call by mistake fails loudly, naming the function.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'dist');
mkdirSync(out, { recursive: true });

const nodeStub = {
  name: 'node-builtins-stub',
  setup(b) {
    // the `webgpu` package is Dawn for Node: the browser has navigator.gpu
    b.onResolve(
      { filter: /^(node:.*|fs|path|os|url|crypto|child_process|worker_threads|module|webgpu)$/ },
      (a) => ({
        path: a.path,
        namespace: 'node-stub',
      }),
    );
    b.onLoad({ filter: /.*/, namespace: 'node-stub' }, (a) => ({
      contents: `module.exports = new Proxy({}, { get: (_, k) => k === '__esModule' ? false : () => { throw new Error(${JSON.stringify(a.path)} + '.' + String(k) + ' is not available in a browser'); } });`,
      loader: 'js',
    }));
  },
};

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
