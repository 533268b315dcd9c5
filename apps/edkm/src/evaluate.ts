import { existsSync } from 'node:fs';
import { InvalidArgumentError } from '@edkm/core';
import {
  MC_TASKS,
  type McResult,
  type PerplexityResult,
  type TaskName,
  evaluate,
  fromLlama,
  progressLine,
} from '@edkm/eval';
import { type LoadedModel, loadModel } from '@edkm/palettized';
import { requireModelFolder, startBackend } from './backend';

export interface EvalOptions {
  model: string;
  task: string;
  data: string;
  limit?: number;
  batch: number;
  window: number;
  stride: number;
  backend: string;
  /** Draw a progress line on stderr. */
  progress: boolean;
  /** Told which backend 'auto' took (one line). */
  log?: (line: string) => void;
}

/** The JSON of `edkm eval --json`: the task's metrics plus what was evaluated. */
export type EvalResult = (McResult | PerplexityResult) & { model: string; palettized: boolean };

/** Evaluates a 16-bit or palettized model folder on one task (a thin wrapper of @edkm/eval). */
export async function runEval(opts: EvalOptions, loaded?: LoadedModel): Promise<EvalResult> {
  const tasks: string[] = [...MC_TASKS, 'ppl'];
  if (!tasks.includes(opts.task))
    throw new InvalidArgumentError(`unknown --task '${opts.task}' (one of ${tasks.join(', ')})`);
  if (!existsSync(opts.data)) throw new InvalidArgumentError(`--data ${opts.data} does not exist`);
  if (opts.limit !== undefined && !(Number.isSafeInteger(opts.limit) && opts.limit > 0))
    throw new InvalidArgumentError(`--limit must be a positive integer, got ${opts.limit}`);
  if (!loaded) requireModelFolder(opts.model);
  await startBackend(opts.backend, opts.log);
  const model = loaded ?? loadModel(opts.model);
  try {
    const scoring = fromLlama(model);
    const onProgress = opts.progress ? progressLine(process.stderr) : undefined;
    const task = opts.task as TaskName;
    const result =
      task === 'ppl'
        ? await evaluate({
            model: scoring,
            task,
            dataPath: opts.data,
            window: opts.window,
            stride: opts.stride,
            batchSize: opts.batch,
            onProgress,
          })
        : await evaluate({
            model: scoring,
            task,
            dataPath: opts.data,
            limit: opts.limit,
            batchSize: opts.batch,
            onProgress,
          });
    if (opts.progress) process.stderr.write('\n');
    return { ...result, model: opts.model, palettized: Boolean(model.palettized) };
  } finally {
    if (!loaded) model.model.dispose();
  }
}
