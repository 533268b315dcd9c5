// The reference app as a library: the pieces the `edkm` command is made of.
export { buildCli, main } from './cli';
export { type Checkpoint, loadCheckpoint, saveCheckpoint } from './checkpoint';
export { type FlashCommandOptions, type FlashCommandResult, runFlash } from './commands/flash';
export { type TrainBatch, type TrainData, openTrainData } from './data';
export { type DemoOptions, runDemo } from './demo';
export {
  type ExportOptions,
  type ExportResult,
  exportModel,
  kmeansPalettes,
  rtnPalettes,
} from './export';
export { type EvalOptions, type EvalResult, runEval } from './evaluate';
export {
  type FinetuneOptions,
  type FinetuneResult,
  defaultPalettizeConfig,
  finetune,
  readPalettizeConfig,
} from './finetune';
export {
  type StepOutput,
  TrainStep,
  type TrainStepOptions,
} from './finetune/step';
export { type GenerateResult, type GenerateRunOptions, runGenerate } from './generate';
export {
  AdamW,
  type AdamWState,
  clipByGlobalNorm,
  globalNormAndClip,
  learningRate,
} from './optim';
export { writeLossPlot } from './plot';
export { type Progress, progressBar, silentProgress } from './progress';
