// `finetune()`: the steps of a fine-tuning run, in order. The options and their checks are in
// finetune/options.ts, the run folder and --resume in finetune/run-folder.ts, the palettizer and
// the memory plan in finetune/plan.ts, the training itself (restore, steps, read-back,
// checkpoints, export) in finetune/training.ts.
import { join } from 'node:path';
import { setMatMulPrecision } from '@edkm/backend-webgpu';
import { InvalidArgumentError, useBackend } from '@edkm/core';
import '@edkm/jlcm'; // registers method: 'jlcm' for palettizer configs
import { describeSelection, hasTensorCores } from './backend';
import {
  type FinetuneOptions,
  type FinetuneResult,
  type RunControl,
  describeConfig,
} from './finetune/options';
import { planRun } from './finetune/plan';
import { resolveRun, startRunFolder } from './finetune/run-folder';
import { TrainingRun } from './finetune/training';
import { writeLossPlot } from './plot';

export {
  type FinetuneOptions,
  type FinetuneResult,
  type RunControl,
  defaultPalettizeConfig,
  describeConfig,
  isDenseConfig,
  readPalettizeConfig,
  validateOptions,
} from './finetune/options';
export { readRun } from './finetune/run-folder';

/**
 * Fine-tunes a LLaMA model while palettizing its linear layers (DKM/eDKM or JLCM per the config),
 * with AdamW, warm-up + cosine schedule, gradient accumulation and clipping. Writes to the run
 * folder: run.json, checkpoint.safetensors (every `saveEvery` steps and at the end, atomically),
 * log.jsonl (one line per step) and loss.svg. With `resume`, continues from the checkpoint
 * exactly: same data position, optimizer state and palettizer state.
 */
export async function finetune(opts: FinetuneOptions, ctl: RunControl): Promise<FinetuneResult> {
  // 1. the options, checked, and the run folder they name (resumable or free)
  const o = resolveRun(opts, ctl.resume);
  // 2. the backend, then the folder and run.json
  const precision = ctl.matmulPrecision ?? 'f32';
  if (precision !== 'f32' && precision !== 'split')
    throw new InvalidArgumentError(`matmul precision must be 'f32' or 'split', got '${precision}'`);
  if (precision === 'split' && ctl.backend !== 'webgpu' && ctl.backend !== 'auto')
    throw new InvalidArgumentError(
      `--matmul-precision split runs on the webgpu backend's int8 tensor cores, not on --backend ${ctl.backend}`,
    );
  const selection = await useBackend(ctl.backend);
  ctl.log(describeSelection(selection));
  useMatMulPrecision(precision, selection.plugin, ctl.log);
  startRunFolder(o, ctl.resume);
  // 3. the palettizer and the memory plan, before the weights are loaded
  const { palettizer, linearWeights } = planRun(o, ctl, selection.plugin);
  // 4. the model, the data and (on --resume) the checkpoint's state
  const run = await TrainingRun.open(o, ctl, palettizer, linearWeights);
  // 5. the training steps, the checkpoints and the export
  const exportReport = await run.train();
  const seconds = run.elapsedSeconds();
  // 6. the loss plot and the summary
  await writeLossPlot(
    join(o.out, 'loss.svg'),
    run.history.map((h) => ({ step: h.step, loss: h.loss, series: 'train' })),
    `palettized fine-tuning (${describeConfig(o.palettize)})`,
  );
  return {
    steps: o.steps - run.start,
    tokens: run.tokensSeen,
    seconds,
    tokensPerSecond: run.tokensSeen / seconds,
    finalLoss: run.lastLoss,
    peakBytes: run.peakBytes,
    runDir: o.out,
    backend: selection.description,
    exportReport,
  };
}

/** Training's float32 products at `precision` on the started backend (see RunControl). */
function useMatMulPrecision(
  precision: 'f32' | 'split',
  plugin: string,
  log: (line: string) => void,
): void {
  if (plugin === 'webgpu') setMatMulPrecision(precision);
  if (precision === 'f32') return;
  if (plugin !== 'webgpu')
    throw new InvalidArgumentError(
      `--matmul-precision split runs on the webgpu backend's int8 tensor cores; --backend auto chose ${plugin}`,
    );
  log(
    hasTensorCores(plugin)
      ? 'matmul precision: split (int8 tensor cores through WebGPU subgroup matrices)'
      : 'matmul precision: split asked, but this device has no int8 subgroup matrices (needs EDKM_WEBGPU_UNSAFE=1 and a GPU that has them): training products stay f32',
  );
}
