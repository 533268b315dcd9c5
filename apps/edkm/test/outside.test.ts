// The `edkm` command away from this repository, as a user who installed it runs it: the built CLI
// and its workspace packages are bundled (esbuild, offline) into one file in an empty temporary
// folder outside the repository, and finetune, export, eval, generate and flash run there with explicit
// paths. A path resolved when the CLI is built or loaded (rather than when a flag is absent) fails
// here. `webgpu` (Dawn's native add-on) is left out of the bundle and is not installed next to it,
// so `--backend cpu` also proves that Dawn is never loaded on the cpu backend.
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Ran, runNode } from './run-node';

const root = join(__dirname, '../../..');
const model = join(root, 'models/edkm-tiny');
const outside = realpathSync(mkdtempSync(join(tmpdir(), 'edkm-outside-')));
const bundle = join(outside, 'edkm.mjs');

/** The command in a child process (see runNode). */
function edkm(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  return runNode(bundle, args, outside, env);
}

beforeAll(async () => {
  // the temporary folder must not lie inside the repository, or the defaults would be found there
  expect(relative(realpathSync(root), outside).startsWith('..')).toBe(true);
  await build({
    entryPoints: [join(root, 'apps/edkm/dist/bin.js')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: bundle,
    external: ['webgpu'],
    // tfjs-backend-cpu's package.json marks its registering entry side-effect free
    ignoreAnnotations: true,
    logLevel: 'error',
    // the CommonJS dependencies (commander, tfjs) call require() for Node's built-ins, and
    // tfjs-backend-wasm looks for its .wasm files in __dirname (copied next to the bundle below)
    banner: {
      js: [
        "import { createRequire as __edkmCreateRequire } from 'node:module';",
        "import { fileURLToPath as __edkmFileURLToPath } from 'node:url';",
        "import { dirname as __edkmDirname } from 'node:path';",
        'const require = __edkmCreateRequire(import.meta.url);',
        'const __filename = __edkmFileURLToPath(import.meta.url);',
        'const __dirname = __edkmDirname(__filename);',
      ].join(' '),
    },
  });
  const wasmDist = dirname(
    createRequire(join(root, 'packages/backend-wasm/package.json')).resolve(
      '@tensorflow/tfjs-backend-wasm',
    ),
  );
  for (const f of readdirSync(wasmDist).filter((f) => f.endsWith('.wasm')))
    copyFileSync(join(wasmDist, f), join(outside, f));
  writeFileSync(
    join(outside, 'train.txt'),
    readFileSync(join(root, 'data/tinyshakespeare/input.txt'), 'utf8').slice(0, 30_000),
  );
  writeFileSync(
    join(outside, 'val.txt'),
    readFileSync(join(root, 'data/eval/shakespeare-val.txt'), 'utf8').slice(0, 400),
  );
  // one decoder layer palettized at 3 bits: the whole pipeline, in seconds on two cores
  writeFileSync(
    join(outside, 'palettize.json'),
    JSON.stringify({
      global: null,
      byName: { 're:model\\.layers\\.0\\..*_proj\\.weight': { bits: 3 } },
    }),
  );
}, 120_000);

describe('edkm bundled outside the repository', () => {
  it(
    'finetune (1 step) → export → eval → generate → flash with explicit paths',
    { timeout: 300_000 },
    async () => {
      const ft = await edkm([
        'finetune',
        '--model',
        model,
        '--data',
        'train.txt',
        '--config',
        'palettize.json',
        '--steps',
        '1',
        '--batch',
        '1',
        '--seq',
        '16',
        '--warmup',
        '0',
        '--save-every',
        '1',
        '--backend',
        'cpu',
        '--out',
        'run',
        '--json',
      ]);
      expect(ft.stderr).not.toMatch(/edkm: error/);
      expect(ft.code).toBe(0);
      expect(JSON.parse(ft.stdout)).toMatchObject({ steps: 1, tokens: 15 });
      expect(existsSync(join(outside, 'run/checkpoint.safetensors'))).toBe(true);

      const ex = await edkm([
        'export',
        '--model',
        'run',
        '--out',
        'model',
        '--backend',
        'cpu',
        '--json',
      ]);
      expect(ex.code).toBe(0);
      const report = JSON.parse(ex.stdout).report;
      expect(report.palettizedWeights).toBe(288 * 288 * 2 + 288 * 96 * 2 + 3 * 288 * 768);
      expect(existsSync(join(outside, 'model/model.safetensors'))).toBe(true);

      const ev = await edkm([
        'eval',
        '--model',
        'model',
        '--task',
        'ppl',
        '--data',
        'val.txt',
        '--window',
        '32',
        '--stride',
        '32',
        '--backend',
        'cpu',
        '--json',
      ]);
      expect(ev.code).toBe(0);
      const ppl = JSON.parse(ev.stdout);
      expect(ppl).toMatchObject({ task: 'ppl', palettized: true });
      expect(ppl.ppl).toBeGreaterThan(1);
      expect(ppl.ppl).toBeLessThan(4096);

      const gen = await edkm([
        'generate',
        '--model',
        'model',
        '--prompt',
        'ROMEO:',
        '--max-new-tokens',
        '4',
        '--backend',
        'cpu',
        '--json',
      ]);
      expect(gen.code).toBe(0);
      const g = JSON.parse(gen.stdout);
      expect(g.prompt_ids[0]).toBe(1);
      expect(g.ids.length).toBe(4);
      expect(typeof g.text).toBe('string');

      const fl = await edkm([
        'flash',
        '--model',
        'model',
        '--out',
        'layout',
        '--backend',
        'cpu',
        '--json',
      ]);
      expect(fl.code).toBe(0);
      const layout = JSON.parse(fl.stdout);
      expect(layout.ffnBytes).toBeGreaterThan(0);
      expect(existsSync(join(outside, 'layout/ffn.flash'))).toBe(true);
    },
  );

  it('a repository default without its flag: one line naming the flag to pass', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['finetune', '--data', 'train.txt', '--out', 'r2', '--backend', 'cpu'],
        /^edkm: error: pass --model: its default is found only inside the edkm repository/,
      ],
      [
        ['finetune', '--model', model, '--out', 'r3', '--backend', 'cpu'],
        /^edkm: error: pass --data: its default is found only inside the edkm repository/,
      ],
      [['generate', '--prompt', 'x', '--backend', 'cpu'], /^edkm: error: pass --model: /],
    ];
    for (const [args, message] of cases) {
      const r = await edkm(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('make-model copies the tokenizer of --tokenizer, and asks for the flag without it', async () => {
    const shape = ['--preset', 'tinyllama-1.1b', '--layers', '1', '--hidden', '64'];
    const small = [...shape, '--intermediate', '128', '--heads', '4', '--kv-heads', '2'];
    const made = await edkm([
      'make-model',
      ...small,
      '--tokenizer',
      model,
      '--out',
      'made',
      '--json',
    ]);
    expect(made.code, made.stderr).toBe(0);
    expect(JSON.parse(made.stdout).parameters).toBeGreaterThan(0);
    expect(readFileSync(join(outside, 'made/tokenizer.json'))).toEqual(
      readFileSync(join(model, 'tokenizer.json')),
    );
    const without = await edkm(['make-model', ...small, '--out', 'made2']);
    expect(without.code).toBe(1);
    expect(without.stderr).toMatch(/^edkm: error: pass --tokenizer: /);
    expect(without.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('--help is quiet and lists the commands', async () => {
    const r = await edkm(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/finetune[\s\S]*export[\s\S]*eval[\s\S]*generate/);
    expect(r.stderr).toBe('');
  });

  it('--backend auto without a loadable Dawn takes wasm and says so in one line', async () => {
    // `webgpu` is not installed next to the bundle: the probe fails and 'auto' falls back
    const r = await edkm([
      'generate',
      '--model',
      model,
      '--prompt',
      'ROMEO:',
      '--max-new-tokens',
      '2',
    ]);
    expect(r.code).toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^backend: tfjs wasm .*; passed over webgpu: /);
  });
});
