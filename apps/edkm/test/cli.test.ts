// End to end through the built `edkm` command (child processes), as a user runs it: fine-tune with
// checkpoints, a kill and --resume against an uninterrupted run, export, inspect, eval, generate,
// and the errors a user can cause.
import { type ChildProcess, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile } from '@edkm/llama';
import { describe, expect, it } from 'vitest';
import { type Ran, runNode } from './run-node';

const root = join(__dirname, '../../..');
const bin = join(root, 'apps/edkm/dist/bin.js');
const work = mkdtempSync(join(tmpdir(), 'edkm-cli-'));
// a slice of the real training text (tokenizing all of it takes seconds per process start)
const text = join(work, 'shakespeare-head.txt');
writeFileSync(
  text,
  readFileSync(join(root, 'data/tinyshakespeare/input.txt'), 'utf8').slice(0, 60_000),
);
// two decoder layers palettized at 3 bits: the real pipeline, small enough for CI's two cores
const config = join(work, 'palettize.json');
writeFileSync(
  config,
  JSON.stringify({
    global: null,
    byName: { 're:model\\.layers\\.[01]\\..*_proj\\.weight': { bits: 3 } },
  }),
);
const train = [
  'finetune',
  '--data',
  text,
  '--holdout-chars',
  '20000',
  '--config',
  config,
  '--steps',
  '4',
  '--batch',
  '2',
  '--seq',
  '16',
  '--save-every',
  '2',
  '--lr',
  '1e-3',
  '--warmup',
  '1',
  '--backend',
  'cpu',
];

/** The command in a child process (see runNode). */
function edkm(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  return runNode(bin, args, root, env);
}

/** Every tensor and the metadata of a safetensors file, for exact comparison. */
function contents(path: string) {
  const st = new SafetensorsFile(path);
  const out: Record<string, string> = { ...st.metadata };
  for (const name of st.tensors.keys()) out[name] = Buffer.from(st.read(name)).toString('base64');
  st.close();
  return out;
}

function waitFor(child: ChildProcess, done: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (done()) {
        clearInterval(timer);
        resolve();
      }
    }, 20);
    child.on('exit', () => {
      clearInterval(timer);
      if (done()) resolve();
      else reject(new Error('the run ended before the awaited event'));
    });
  });
}

describe('edkm finetune: checkpoints, a kill, --resume', () => {
  const straight = join(work, 'straight');
  const killed = join(work, 'killed');

  it(
    'a run killed after its step-2 checkpoint and resumed ends bit-identical to an uninterrupted run',
    { timeout: 240_000 },
    async () => {
      const a = await edkm([...train, '--out', straight, '--json']);
      expect(a.stderr).toContain('palettizing 14 of 43 linear weights');
      expect(a.code).toBe(0);
      const result = JSON.parse(a.stdout);
      expect(result).toMatchObject({ steps: 4, tokens: 4 * 2 * 15 });

      const child = spawn(process.execPath, [bin, ...train, '--out', killed], {
        cwd: root,
        stdio: 'ignore',
      });
      const log = join(killed, 'log.jsonl');
      await waitFor(
        child,
        () =>
          existsSync(log) && readFileSync(log, 'utf8').includes('"event":"checkpoint","step":2'),
      );
      child.kill('SIGKILL');
      await new Promise((r) => child.on('exit', r));
      expect(contents(join(killed, 'checkpoint.safetensors')).step).toBe('2');

      const b = await edkm([...train, '--out', killed, '--resume']);
      expect(b.code).toBe(0);
      expect(b.stderr).toContain('resumed from step 2');
      expect(contents(join(killed, 'checkpoint.safetensors'))).toEqual(
        contents(join(straight, 'checkpoint.safetensors')),
      );
      const steps = (dir: string) =>
        readFileSync(join(dir, 'log.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l))
          .filter((e) => e.event === 'step')
          .map((e) => [e.step, e.loss]);
      expect(steps(killed)).toEqual(steps(straight));
      expect(readFileSync(join(straight, 'loss.svg'), 'utf8')).toMatch(/^<svg/);
    },
  );

  it('refuses to overwrite a run, a --resume with other settings, and a corrupt checkpoint', async () => {
    const again = await edkm([...train, '--out', straight]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already holds a run.*--resume/);
    const changed = await edkm([
      ...train.map((x) => (x === '1e-3' ? '2e-3' : x)),
      '--out',
      straight,
      '--resume',
    ]);
    expect(changed.code).toBe(1);
    expect(changed.stderr).toMatch(/lr: run 0\.001, given 0\.002/);
    const corrupt = join(work, 'corrupt');
    mkdirSync(corrupt);
    for (const f of ['run.json', 'checkpoint.safetensors'])
      copyFileSync(join(straight, f), join(corrupt, f));
    const ckpt = join(corrupt, 'checkpoint.safetensors');
    writeFileSync(ckpt, readFileSync(ckpt).subarray(0, 1000));
    const bad = await edkm([...train, '--out', corrupt, '--resume']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/edkm: error: .*checkpoint\.safetensors/);
    expect(bad.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
  });

  it('export → inspect → eval → generate on the palettized model; re-export is byte-identical', async () => {
    const out = join(work, 'export');
    const ex = await edkm([
      'export',
      '--model',
      straight,
      '--out',
      out,
      '--json',
      '--backend',
      'cpu',
    ]);
    expect(ex.code).toBe(0);
    const report = JSON.parse(ex.stdout).report;
    expect(report.palettizedWeights).toBe(2 * (288 * 288 * 2 + 288 * 96 * 2 + 3 * 288 * 768));
    expect(report.bitsPerPalettizedWeight).toBeGreaterThan(3);
    expect(report.bitsPerPalettizedWeight).toBeLessThan(3.01);
    const ins = await edkm(['inspect', out]);
    expect(ins.stdout).toMatch(
      /model\.layers\.0\.mlp\.down_proj\.weight\s+3-bit LUT\s+\[288, 768\]/,
    );

    const mc = await edkm([
      'eval',
      '--model',
      out,
      '--task',
      'multiple_choice',
      '--data',
      join(root, 'data/eval/shakespeare-next-line.jsonl'),
      '--limit',
      '3',
      '--json',
      '--backend',
      'cpu',
    ]);
    expect(mc.code).toBe(0);
    expect(JSON.parse(mc.stdout)).toMatchObject({
      task: 'multiple_choice',
      n: 3,
      palettized: true,
    });
    const val = join(work, 'val.txt');
    writeFileSync(
      val,
      readFileSync(join(root, 'data/eval/shakespeare-val.txt'), 'utf8').slice(0, 600),
    );
    // the perplexity through each engine: the dense model, the inference decoder (stored
    // weights: the same perplexity) and the decoder under W8A8 (close)
    const engine = async (e: string) => {
      const r = await edkm([
        'eval',
        '--model',
        out,
        '--task',
        'ppl',
        '--data',
        val,
        '--window',
        '64',
        '--stride',
        '32',
        '--engine',
        e,
        '--json',
        '--backend',
        'cpu',
      ]);
      expect(r.code).toBe(0);
      return JSON.parse(r.stdout);
    };
    const p = await engine('model');
    expect(p.task).toBe('ppl');
    expect(p.ppl).toBeGreaterThan(1);
    expect(p.tokens).toBeGreaterThan(100);
    const viaDecoder = await engine('decoder');
    expect(viaDecoder).toMatchObject({ engine: 'decoder', palettized: true, tokens: p.tokens });
    expect(Math.abs(viaDecoder.ppl - p.ppl) / p.ppl).toBeLessThan(1e-5);
    const w8a8 = await engine('w8a8');
    expect(w8a8.ppl).not.toBe(viaDecoder.ppl);
    expect(Math.abs(w8a8.ppl - p.ppl) / p.ppl).toBeLessThan(0.03);

    const gen = await edkm([
      'generate',
      '--model',
      out,
      '--prompt',
      'ROMEO:',
      '--max-new-tokens',
      '5',
      '--json',
      '--backend',
      'cpu',
    ]);
    expect(gen.code).toBe(0);
    const g = JSON.parse(gen.stdout);
    expect(g.prompt_ids[0]).toBe(1);
    expect(g.ids.length).toBeGreaterThan(0);
    expect(typeof g.text).toBe('string');

    const out2 = join(work, 'export2');
    expect(
      (await edkm(['export', '--model', straight, '--out', out2, '--backend', 'cpu'])).code,
    ).toBe(0);
    expect(
      Buffer.compare(
        readFileSync(join(out, 'model.safetensors')),
        readFileSync(join(out2, 'model.safetensors')),
      ),
    ).toBe(0);
  }, 180_000);

  it('generate --flash (FFN read from disk at a 25% budget, every neuron) gives the same tokens', async () => {
    const args = [
      'generate',
      '--prompt',
      'ROMEO:',
      '--max-new-tokens',
      '8',
      '--json',
      '--backend',
      'cpu',
    ];
    const dense = await edkm(args);
    const flash = await edkm([...args, '--flash', '--memory-budget', '25%']);
    expect(flash.code).toBe(0);
    const [a, b] = [JSON.parse(dense.stdout), JSON.parse(flash.stdout)];
    expect(b.ids).toEqual(a.ids);
    expect(b.flash.bytesRead).toBeGreaterThan(0);
    expect(b.flash.memory.fractionOfModel).toBeLessThan(0.7);
  });

  it('user errors: one clear line and a non-zero exit', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['finetune', '--model', join(work, 'nope'), '--out', join(work, 'x')],
        /--model .*nope is not a model folder/,
      ],
      [
        ['finetune', '--out', join(work, 'y'), '--config', join(work, 'missing.json')],
        /--config .*missing\.json/,
      ],
      [['eval', '--task', 'squad', '--data', text], /argument 'squad' is invalid/],
      [
        ['eval', '--task', 'ppl', '--data', join(work, 'none.txt')],
        /--data .*none\.txt does not exist/,
      ],
      [
        ['export', '--model', join(root, 'models/edkm-tiny'), '--out', join(work, 'z')],
        /choose a post-training --method/,
      ],
      [['inspect', join(work, 'nothing')], /does not exist/],
      [['finetune', '--out', join(work, 'w'), '--steps', 'many'], /--steps must be an integer/],
    ];
    const badConfig = join(work, 'bad.json');
    writeFileSync(badConfig, JSON.stringify({ global: { bits: 12 } }));
    cases.push([
      ['finetune', '--out', join(work, 'v'), '--config', badConfig],
      /global: bits must be an integer in \[1, 8\]/,
    ]);
    for (const [args, message] of cases) {
      const r = await edkm(args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('arguments are checked before a backend starts: a user error is one line, even with auto', async () => {
    // on a machine with Vulkan, a started WebGPU (Dawn) would print its adapter warnings first
    for (const env of [{}, { EDKM_FAKE_NO_VULKAN: '1' }] as Record<string, string>[]) {
      const cases = [
        ['export', '--model', join(root, 'models/edkm-tiny'), '--out', join(work, 'z')],
        ['eval', '--model', join(work, 'nope'), '--task', 'ppl', '--data', text],
        ['generate', '--model', join(work, 'nope'), '--prompt', 'ROMEO:'],
        ['generate', '--prompt', 'ROMEO:', '--flash', '--memory-budget', 'lots'],
        ['flash', '--model', join(work, 'nope'), '--out', join(work, 'layout')],
      ];
      for (const args of cases) {
        const r = await edkm(args, env);
        expect(r.code, args.join(' ')).toBe(1);
        expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
        expect(r.stderr).toMatch(/^edkm: error: /);
      }
    }
  });

  it('without Vulkan, --backend auto falls back quietly and names the backend in one line', async () => {
    const args = ['generate', '--prompt', 'ROMEO:', '--max-new-tokens', '2', '--json'];
    const auto = await edkm(args, { EDKM_FAKE_NO_VULKAN: '1' });
    expect(auto.code).toBe(0);
    const lines = auto.stderr.trim().split('\n');
    expect(lines, auto.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^backend: tfjs wasm .*; passed over webgpu: no Vulkan loader/);
    expect(auto.stderr).not.toMatch(/Warning|Vulkan: /);
    // a backend named explicitly starts without a word
    const cpu = await edkm([...args, '--backend', 'cpu']);
    expect(cpu.code).toBe(0);
    expect(cpu.stderr).toBe('');
    expect(JSON.parse(cpu.stdout).ids).toEqual(JSON.parse(auto.stdout).ids);
  });
});
