// `pnpm demo` / `edkm demo`: the whole pipeline on the shipped tiny model, in minutes on a CPU —
// evaluate the 16-bit model and the post-training baselines (round-to-nearest, k-means), fine-tune
// with eDKM on Shakespeare, export the palettized model, reload it, evaluate it and generate.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { getPlugin, useBackend } from '@edkm/core';
import type { PalettizerConfig } from '@edkm/dkm';
import { defaultModelDir } from '@edkm/llama';
import { type SizeReport, formatSizeReport, loadModel } from '@edkm/palettized';
import { describeSelection } from './backend';
import { runEval } from './evaluate';
import { exportModel } from './export';
import { defaultPalettizeConfig, finetune } from './finetune';
import { runGenerate } from './generate';
import { progressBar } from './progress';

/** The fine-tuning and evaluation settings of a demo run (flags override them one by one). */
export interface DemoRecipe {
  steps: number;
  batch: number;
  seq: number;
  lr: number;
  /** Linear warm-up steps and the final learning rate as a fraction of the peak (cosine). */
  warmup: number;
  minLrRatio: number;
  trainEmbeddings: boolean;
  pplChars: number;
  mc: number;
  /**
   * Also fine-tune without palettization (`--bits 16`), evaluate that, and k-means it after
   * training: what train-time clustering is measured against (another training run).
   */
  ftBaseline: boolean;
}

/**
 * 'cpu': minutes on two CPU cores. 'gpu': the quality recipe of the PyTorch reference
 * (`torch_dkm_finetune_tiny.py`): 400 steps of 32×256, AdamW lr 1e-4 constant, every parameter
 * trained, perplexity of the whole held-out 20,000 characters.
 */
export const demoRecipes: Record<'cpu' | 'gpu', DemoRecipe> = {
  cpu: {
    steps: 24,
    batch: 4,
    seq: 64,
    lr: 5e-4,
    warmup: 2,
    minLrRatio: 0.1,
    trainEmbeddings: false,
    pplChars: 2000,
    mc: 24,
    ftBaseline: false,
  },
  gpu: {
    steps: 400,
    batch: 32,
    seq: 256,
    lr: 1e-4,
    warmup: 0,
    minLrRatio: 1,
    trainEmbeddings: true,
    pplChars: 20_000,
    mc: 100,
    ftBaseline: true,
  },
};

export interface DemoOptions extends Partial<DemoRecipe> {
  bits: number;
  out: string;
  backend: string;
  /** Default: 'gpu' when the backend runs on a hardware GPU, else 'cpu'. */
  recipe?: 'cpu' | 'gpu';
}

/** The data shipped in the repository, found from the model folder. */
function repoData(...parts: string[]): string {
  return join(defaultModelDir(), '..', '..', 'data', ...parts);
}

interface Row {
  model: string;
  ppl: number;
  acc: number;
  acc_norm?: number;
  bitsPerWeight?: number;
  seconds: number;
}

export async function runDemo(options: DemoOptions): Promise<{ rows: Row[]; summaryPath: string }> {
  const out = resolve(options.out);
  const log = (s: string) => process.stdout.write(`${s}\n`);
  // wall seconds of each part, in order (the first: the process's start-up and imports)
  const phases: Record<string, number> = { 'process start': process.uptime() };
  let mark = performance.now();
  const phase = (name: string) => {
    const now = performance.now();
    phases[name] = (now - mark) / 1000;
    mark = now;
  };
  const selection = await useBackend(options.backend);
  // 'auto' says why it passed over the plugins it tried first (e.g. a GPU emulated in software)
  log(describeSelection(selection));
  const onGpu = selection.tfjsBackend === 'webgpu' && !getPlugin(selection.plugin)?.isSoftware?.();
  const recipeName = options.recipe ?? (onGpu ? 'gpu' : 'cpu');
  const defined = Object.fromEntries(
    Object.entries(options).filter(([, v]) => v !== undefined),
  ) as DemoOptions;
  const o = { ...demoRecipes[recipeName], ...defined };
  log(`recipe: ${recipeName} (${o.steps} steps of ${o.batch}×${o.seq}, lr ${o.lr})`);
  mkdirSync(out, { recursive: true });
  // the held-out text: the first pplChars characters of the last 20,000 of tinyshakespeare
  const pplText = join(out, 'heldout.txt');
  const { readFileSync } = await import('node:fs');
  writeFileSync(
    pplText,
    readFileSync(repoData('eval', 'shakespeare-val.txt'), 'utf8').slice(0, o.pplChars),
  );
  const mcFile = repoData('eval', 'shakespeare-next-line.jsonl');
  const base = defaultModelDir();
  const rows: Row[] = [];
  phase('backend start');

  const evaluateModel = async (label: string, dir: string, bitsPerWeight?: number) => {
    const t0 = performance.now();
    const loaded = loadModel(dir);
    const common = {
      model: dir,
      batch: 8,
      window: 256,
      stride: 128,
      backend: o.backend,
      progress: false,
    };
    try {
      const ppl = await runEval({ ...common, task: 'ppl', data: pplText }, loaded);
      const mc = await runEval(
        { ...common, task: 'multiple_choice', data: mcFile, limit: o.mc },
        loaded,
      );
      const row: Row = {
        model: label,
        ppl: (ppl as { ppl: number }).ppl,
        acc: (mc as { acc: number }).acc,
        acc_norm: (mc as { acc_norm?: number }).acc_norm,
        bitsPerWeight,
        seconds: (performance.now() - t0) / 1000,
      };
      rows.push(row);
      log(
        `  ${label.padEnd(34)} ppl ${row.ppl.toFixed(2).padStart(7)}   next-line acc ${row.acc.toFixed(3)}   (${row.seconds.toFixed(0)} s)`,
      );
    } finally {
      loaded.model.dispose();
    }
  };

  log(`\n1. the 16-bit model and post-training ${o.bits}-bit baselines (no training)`);
  await evaluateModel('16-bit (bf16)', base);
  phase('eval 16-bit');
  const reports: Record<string, SizeReport> = {};
  for (const method of ['rtn', 'kmeans'] as const) {
    const dir = join(out, `${method}-${o.bits}bit`);
    const r = await exportModel({
      model: base,
      out: dir,
      method,
      bits: o.bits,
      backend: o.backend,
    });
    reports[method] = r.report!;
    phase(`export ${method}`);
    const label = method === 'rtn' ? 'round-to-nearest, per channel' : 'k-means, per tensor';
    await evaluateModel(`${label} ${o.bits}-bit`, dir, r.report!.bitsPerPalettizedWeight);
    phase(`eval ${method}`);
  }

  log(
    `\n2. fine-tune with ${o.bits}-bit eDKM on Shakespeare: ${o.steps} steps of ${o.batch}×${o.seq} tokens`,
  );
  const train = async (dir: string, palettize: PalettizerConfig) => {
    if (existsSync(dir)) rmSync(dir, { recursive: true });
    return finetune(
      {
        model: base,
        data: repoData('tinyshakespeare', 'input.txt'),
        out: dir,
        palettize,
        steps: o.steps,
        batch: o.batch,
        seq: o.seq,
        gradAccum: 1,
        lr: o.lr,
        warmup: Math.min(o.warmup, o.steps),
        minLrRatio: o.minLrRatio,
        weightDecay: 0,
        clip: 1,
        seed: 0,
        saveEvery: o.steps,
        holdoutChars: 20_000, // the evaluation text is the last 20,000 characters
        packing: false,
        trainEmbeddings: o.trainEmbeddings,
      },
      { backend: o.backend, resume: false, progress: progressBar(), log: (s) => log(`  ${s}`) },
    );
  };
  const runDir = join(out, 'run');
  const trained = await train(runDir, defaultPalettizeConfig(o.bits));
  phase('fine-tune');
  log(
    `  ${trained.tokens.toLocaleString('en-US')} tokens in ${trained.seconds.toFixed(0)} s (${trained.tokensPerSecond.toFixed(0)} tokens/s); loss plot ${join(runDir, 'loss.svg')}`,
  );

  log('\n3. export the palettized model (fp16 LUTs + packed indices)');
  const exportDir = join(out, `edkm-${o.bits}bit`);
  const exported = await exportModel({
    model: runDir,
    out: exportDir,
    method: 'auto',
    bits: o.bits,
    backend: o.backend,
  });
  phase('export eDKM');
  log(formatSizeReport(exported.report!).replace(/^/gm, '  '));

  log('\n4. reload the export and evaluate it');
  await evaluateModel(
    `eDKM ${o.bits}-bit, fine-tuned`,
    exportDir,
    exported.report!.bitsPerPalettizedWeight,
  );
  phase('eval eDKM');

  if (o.ftBaseline) {
    log(
      `\n4b. the same fine-tuning without palettization (16-bit), then k-means at ${o.bits} bits`,
    );
    const ftDir = join(out, 'run-16bit');
    await train(ftDir, defaultPalettizeConfig(16));
    phase('fine-tune 16-bit');
    const ftExport = join(out, 'finetuned-16bit');
    await exportModel({
      model: ftDir,
      out: ftExport,
      method: 'auto',
      bits: 16,
      backend: o.backend,
    });
    await evaluateModel('16-bit, fine-tuned', ftExport);
    const kmDir = join(out, `finetuned-kmeans-${o.bits}bit`);
    const km = await exportModel({
      model: ftDir,
      out: kmDir,
      method: 'kmeans',
      bits: o.bits,
      backend: o.backend,
    });
    await evaluateModel(
      `fine-tuned, then k-means ${o.bits}-bit`,
      kmDir,
      km.report!.bitsPerPalettizedWeight,
    );
    phase('eval 16-bit fine-tune');
  }

  log('\n5. generate from the palettized model');
  process.stdout.write('  ROMEO:');
  const sample = await runGenerate({
    model: exportDir,
    prompt: 'ROMEO:',
    alpaca: false,
    backend: o.backend,
    maxNewTokens: 48,
    temperature: 0.8,
    topK: 40,
    seed: 1,
    onText: (t) => process.stdout.write(t.replace(/\n/g, '\n  ')),
  });
  phase('generate');
  log('\n');
  log(formatRows(rows));
  const summaryPath = join(out, 'summary.json');
  writeFileSync(
    summaryPath,
    `${JSON.stringify({ backend: selection.description, options: { ...o, recipe: recipeName }, training: trained, phases, size: exported.report, baselines: reports, rows, sample: sample.text }, null, 2)}\n`,
  );
  const total = Object.values(phases).reduce((a, b) => a + b, 0);
  log(
    `\n${total.toFixed(1)} s: ${Object.entries(phases)
      .map(([k, v]) => `${k} ${v.toFixed(1)}`)
      .join(', ')}`,
  );
  log(`summary → ${summaryPath}`);
  return { rows, summaryPath };
}

function formatRows(rows: Row[]): string {
  const head = `${'model'.padEnd(36)} ${'bits/w'.padStart(7)} ${'ppl'.padStart(8)} ${'acc'.padStart(6)}`;
  const lines = rows.map(
    (r) =>
      `${r.model.padEnd(36)} ${(r.bitsPerWeight?.toFixed(3) ?? '16').padStart(7)} ${r.ppl.toFixed(2).padStart(8)} ${r.acc.toFixed(3).padStart(6)}`,
  );
  return [head, ...lines].join('\n');
}
