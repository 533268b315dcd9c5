// The run folder: where a run's options (run.json), checkpoint and log live, and what --resume
// asks of it.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidArgumentError } from '@edkm/core';
import { checkpointPath } from '../checkpoint';
import { type FinetuneOptions, validateOptions } from './options';

function runFile(runDir: string): string {
  return join(runDir, 'run.json');
}

/** The stored options of a run folder. */
export function readRun(runDir: string): FinetuneOptions {
  const path = runFile(runDir);
  if (!existsSync(path))
    throw new InvalidArgumentError(`${runDir} is not a fine-tuning run (no run.json)`);
  return JSON.parse(readFileSync(path, 'utf8')).options as FinetuneOptions;
}

/** Options that must not change on --resume (anything that changes the computation). */
function resumeMismatches(stored: FinetuneOptions, given: FinetuneOptions): string[] {
  const out: string[] = [];
  for (const key of Object.keys(stored) as (keyof FinetuneOptions)[]) {
    // the output folder, the checkpoint interval and the step count (to train on) may change
    if (key === 'out' || key === 'saveEvery' || key === 'steps' || key === 'readEvery') continue;
    const a = JSON.stringify(stored[key]);
    const b = JSON.stringify(given[key]);
    if (a !== b) out.push(`${key}: run ${a}, given ${b}`);
  }
  return out;
}

/**
 * The options with absolute paths, checked, against the run folder too: with `resume` it must hold
 * a run with the same settings and a checkpoint; without, it must hold no run.
 */
export function resolveRun(opts: FinetuneOptions, resume: boolean): FinetuneOptions {
  const o = {
    ...opts,
    model: resolve(opts.model),
    data: resolve(opts.data),
    out: resolve(opts.out),
  };
  validateOptions(o);
  const ckptPath = checkpointPath(o.out);
  if (resume) {
    const stored = readRun(o.out);
    const diff = resumeMismatches(stored, o);
    if (diff.length)
      throw new InvalidArgumentError(
        `--resume continues the run in ${o.out} with its own settings; these differ:\n  ${diff.join('\n  ')}`,
      );
    if (!existsSync(ckptPath))
      throw new InvalidArgumentError(
        `--resume: ${o.out} has no checkpoint yet; start it again without --resume`,
      );
  } else if (existsSync(ckptPath)) {
    throw new InvalidArgumentError(
      `${o.out} already holds a run (checkpoint.safetensors): pass --resume to continue it, or choose another --out`,
    );
  }
  return o;
}

/** Creates the run folder; a new run stores its options there (run.json). */
export function startRunFolder(o: FinetuneOptions, resume: boolean): void {
  mkdirSync(o.out, { recursive: true });
  if (!resume)
    writeFileSync(runFile(o.out), `${JSON.stringify({ version: 1, options: o }, null, 2)}\n`);
}
