// `pnpm web`: serves dist/ (run build.mjs first) on localhost and prints the URL. The page opens
// dist/model/ by default: the shipped edkm-tiny exported at 3 bits, made here once if absent
// (post-training k-means through the edkm CLI; takes a minute on a CPU).
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

/** Serves `root` on `port` (0: any free one); resolves with the server and its URL. */
export function serveStatic(root, port = 0) {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(root, path.endsWith('/') ? `${path}index.html` : path));
    if (!file.startsWith(resolve(root)) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  return new Promise((ok) =>
    server.listen(port, '127.0.0.1', () =>
      ok({ server, url: `http://127.0.0.1:${server.address().port}/` }),
    ),
  );
}

/** The shipped tiny model exported at 3 bits into `out` (skipped when it is there). */
export function ensureTinyExport(out) {
  if (existsSync(join(out, 'model.safetensors'))) return;
  const repo = resolve(here, '../..');
  const run = spawnSync(
    process.execPath,
    [
      join(repo, 'scripts/edkm.mjs'),
      'export',
      '--model',
      join(repo, 'models/edkm-tiny'),
      '--method',
      'kmeans',
      '--bits',
      '3',
      '--out',
      out,
    ],
    { stdio: 'inherit' },
  );
  if (run.status !== 0) throw new Error(`edkm export failed (exit ${run.status})`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dist = join(here, 'dist');
  if (!existsSync(join(dist, 'main.js'))) {
    console.error('apps/web/dist is not built: run `pnpm web` (it builds first)');
    process.exit(1);
  }
  ensureTinyExport(join(dist, 'model'));
  const port = Number(process.env.PORT ?? 8080);
  const { url } = await serveStatic(dist, port);
  console.log(`edkm web page: ${url}  (Ctrl-C to stop; WebGPU needs a browser that has it)`);
}
