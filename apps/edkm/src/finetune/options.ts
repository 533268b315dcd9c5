// The options of a fine-tuning run: their types, the palettizer config they carry, and their checks.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '@edkm/core';
import { type PalettizerConfig, parsePalettizerConfig } from '@edkm/dkm';
import type { SizeReport } from '@edkm/palettized';
import type { Progress } from '../progress';

/** Everything that decides a fine-tuning run (stored as run.json; --resume must match it). */
export interface FinetuneOptions {
  model: string;
  data: string;
  out: string;
  /** Palettizer config (coremltools style); default: every decoder linear layer at `bits`. */
  palettize: PalettizerConfig;
  steps: number;
  batch: number;
  seq: number;
  gradAccum: number;
  lr: number;
  warmup: number;
  minLrRatio: number;
  weightDecay: number;
  clip: number;
  seed: number;
  saveEvery: number;
  holdoutChars: number;
  packing: boolean;
  trainEmbeddings: boolean;
  /**
   * eDKM's memory switches (the paper's ablation): `marshal` keeps the index lists saved for the
   * backward pass in host memory (@edkm/marshal); `shards` splits each index list; `indexLists`
   * uses index lists instead of reading each weight's table row from its own 16-bit code (implied
   * by the other two).
   */
  marshal?: boolean;
  shards?: number;
  indexLists?: boolean;
  /**
   * Read the loss and gradient norm back every this many steps (default 10; 1 = every step): the
   * log, the progress bar and the divergence check lag by up to that many steps.
   */
  readEvery?: number;
  /**
   * Gradient checkpointing per decoder layer with layer-wise updates (@edkm/llama's
   * layerwiseStep): the forward pass keeps each layer's input only, the backward pass recomputes
   * one layer at a time and AdamW updates that layer and frees its gradients before the next.
   * --clip then clips each layer's gradient (the head's, each decoder layer's) by its own norm.
   */
  checkpointing?: boolean;
}

export const DEFAULT_READ_EVERY = 10;

export interface RunControl {
  backend: string;
  resume: boolean;
  progress: Progress;
  log: (line: string) => void;
  /** Device bytes to plan against (default: host memory on cpu, unknown on webgpu). */
  deviceMemory?: number;
  /**
   * Writes the palettized export of the trained model here at the end, from memory (no
   * checkpoint needed: a 7B model's checkpoint with AdamW's moments is 80 GB).
   */
  exportTo?: string;
  /**
   * Record a step once and replay it (see TrainStep; default true). Off: every step op by op.
   * Results are the same either way (to float32 rounding).
   */
  stepGraph?: boolean;
  /**
   * The float32 products of training (webgpu only): 'f32' (default), or 'split' — the
   * split-precision product on int8 tensor cores (@edkm/backend-webgpu's setMatMulPrecision: each
   * operand as two int8 slices, ~2^−16 of a row's largest value; 0.2× bf16 autocast's error and
   * 2.5× our f32 GEMM on an H200). It needs Dawn's unsafe APIs (EDKM_WEBGPU_UNSAFE=1, set before
   * the backend starts; the CLI's --matmul-precision does); without tensor cores the products stay
   * f32 and the log says so.
   */
  matmulPrecision?: 'f32' | 'split';
}

export interface FinetuneResult {
  steps: number;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  finalLoss: number;
  peakBytes: number;
  runDir: string;
  backend: string;
  /** The size report of the export written to RunControl.exportTo. */
  exportReport?: SizeReport;
}

/** The default per-layer config: DKM on every decoder linear layer; embeddings and LM head 16-bit. */
export function defaultPalettizeConfig(bits: number): PalettizerConfig {
  if (bits === 16) return DENSE_CONFIG;
  return { global: { bits }, byName: { 'lm_head.weight': null } };
}

/** `--bits 16`: no weight palettized — the 16-bit fine-tune that the palettized runs are measured against. */
export const DENSE_CONFIG: PalettizerConfig = Object.freeze({ global: null });

/** Whether a config asks for no palettization at all (`--bits 16`, or `{"global": null}` alone). */
export function isDenseConfig(c: PalettizerConfig): boolean {
  return c.global === null && Object.keys(c.byName ?? {}).length === 0;
}

export function readPalettizeConfig(path: string): PalettizerConfig {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`--config ${path}: ${(err as Error).message}`);
  }
  return parsePalettizerConfig(json, path);
}

export function validateOptions(o: FinetuneOptions): void {
  const positiveInts: (keyof FinetuneOptions)[] = ['steps', 'batch', 'seq', 'gradAccum'];
  if (!(Number.isSafeInteger(o.saveEvery) && o.saveEvery >= 0))
    throw new InvalidArgumentError(
      `--save-every must be a non-negative integer (0: no checkpoints), got ${o.saveEvery}`,
    );
  for (const k of positiveInts)
    if (!(Number.isSafeInteger(o[k]) && (o[k] as number) > 0))
      throw new InvalidArgumentError(`--${kebab(k)} must be a positive integer, got ${o[k]}`);
  const nonNegative: (keyof FinetuneOptions)[] = ['warmup', 'holdoutChars', 'seed'];
  for (const k of nonNegative)
    if (!(Number.isSafeInteger(o[k]) && (o[k] as number) >= 0))
      throw new InvalidArgumentError(`--${kebab(k)} must be a non-negative integer, got ${o[k]}`);
  if (!(o.lr > 0 && o.lr < 1))
    throw new InvalidArgumentError(`--lr must be in (0, 1), got ${o.lr}`);
  if (!(o.weightDecay >= 0)) throw new InvalidArgumentError('--weight-decay must be ≥ 0');
  if (!(o.clip >= 0)) throw new InvalidArgumentError('--clip must be ≥ 0 (0 = off)');
  if (!(o.minLrRatio >= 0 && o.minLrRatio <= 1))
    throw new InvalidArgumentError('--min-lr-ratio must be in [0, 1]');
  if (o.readEvery !== undefined && !(Number.isSafeInteger(o.readEvery) && o.readEvery > 0))
    throw new InvalidArgumentError(`--read-every must be a positive integer, got ${o.readEvery}`);
  if (o.seq < 2) throw new InvalidArgumentError('--seq must be at least 2');
  if (!existsSync(join(o.model, 'config.json')))
    throw new InvalidArgumentError(`--model ${o.model} is not a model folder (no config.json)`);
  if (!existsSync(o.data)) throw new InvalidArgumentError(`--data ${o.data} does not exist`);
  if (o.checkpointing && o.gradAccum > 1)
    throw new InvalidArgumentError(
      '--checkpointing updates each layer during the backward pass: it cannot accumulate gradients (--grad-accum 1)',
    );
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export function describeConfig(c: PalettizerConfig): string {
  if (isDenseConfig(c)) return '16-bit, no palettization';
  const g = c.global as Record<string, unknown> | null | undefined;
  const head = g ? `${g.method ?? 'dkm'} ${g.bits ?? 4}-bit` : 'no global setting';
  const overrides = Object.keys(c.byName ?? {}).length;
  return overrides ? `${head}, ${overrides} override${overrides > 1 ? 's' : ''}` : head;
}
