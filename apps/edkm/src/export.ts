import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PaletteTensor } from '@edkm/codec';
import { InvalidArgumentError, f16BitsToF32, f32ToF16Bits, tf } from '@edkm/core';
import { Palettizer, type PalettizerConfig } from '@edkm/dkm';
import '@edkm/jlcm';
import { type LlamaModel, loadLlama } from '@edkm/llama';
import {
  type DenseWeight,
  type HfExportResult,
  type SizeReport,
  writeHfExport,
  writePalettized,
} from '@edkm/palettized';
import { startBackend } from './backend';
import { checkpointPath, loadCheckpoint } from './checkpoint';
import { defaultPalettizeConfig, describeConfig, isDenseConfig, readRun } from './finetune';

export type ExportMethod = 'auto' | 'kmeans' | 'rtn';

export interface ExportOptions {
  /** A fine-tuning run folder (its checkpoint's clustering), or a 16-bit model folder. */
  model: string;
  out: string;
  /**
   * auto: a fine-tuning run's own clustering; kmeans / rtn: post-training palettization of a
   * 16-bit model or of a run's fine-tuned weights.
   */
  method: ExportMethod;
  bits: number;
  /** Post-training only: the per-layer config (default: every decoder linear layer at `bits`). */
  palettize?: PalettizerConfig;
  /** dtype of the weights that stay dense (default bf16; f32 keeps fine-tuned values exactly). */
  denseDtype?: 'bf16' | 'fp16' | 'f32';
  backend: string;
  /**
   * edkm (default): the palettized folder (LUTs + packed indices). hf: the hard-assigned weights
   * dequantized into a standard Hugging Face folder (sharded safetensors in `hfDtype`, default
   * bf16; the palettes in the metadata) that transformers or vLLM load as it is.
   */
  format?: 'edkm' | 'hf';
  hfDtype?: 'bf16' | 'fp16' | 'f32';
  /** hf: largest shard in bytes (default 5 GiB). */
  maxShardBytes?: number;
  /** Told which backend 'auto' took (one line). */
  log?: (line: string) => void;
}

export interface ExportResult {
  out: string;
  source: string;
  method: string;
  /** The palettized folder's size report (format edkm). */
  report?: SizeReport;
  /** The Hugging Face folder's files and bytes (format hf). */
  hf?: HfExportResult;
}

function writeExport(
  opts: ExportOptions,
  out: string,
  dense: Map<string, DenseWeight>,
  palettes: Map<string, PaletteTensor>,
  copyFrom: string,
  metadata: Record<string, string>,
): Pick<ExportResult, 'report' | 'hf'> {
  if (opts.format === 'hf')
    return {
      hf: writeHfExport(out, dense, palettes, {
        copyFrom,
        dtype: opts.hfDtype,
        maxShardBytes: opts.maxShardBytes,
        metadata,
      }),
    };
  return {
    report: writePalettized(out, dense, palettes, {
      copyFrom,
      denseDtype: opts.denseDtype,
      metadata,
    }),
  };
}

/** Whether a folder is a fine-tuning run (it has run.json). */
export function isRunDir(dir: string): boolean {
  return existsSync(join(dir, 'run.json'));
}

/**
 * Writes the palettized model of a fine-tuning run (the DKM/JLCM clustering of its last
 * checkpoint, hard-assigned) or a post-training baseline (k-means or per-channel round-to-nearest)
 * of a 16-bit model, as a palettized model folder.
 */
export async function exportModel(opts: ExportOptions): Promise<ExportResult> {
  const from = resolve(opts.model);
  const out = resolve(opts.out);
  if (!existsSync(from)) throw new InvalidArgumentError(`--model ${from} does not exist`);
  if (from === out) throw new InvalidArgumentError('--out must differ from --model');
  // every argument is checked before a backend starts
  const runDir = isRunDir(from);
  if (!runDir && opts.method === 'auto')
    throw new InvalidArgumentError(
      `${from} is a 16-bit model, not a fine-tuning run: choose a post-training --method kmeans or rtn`,
    );
  if (opts.method !== 'auto' && isDenseConfig(opts.palettize ?? defaultPalettizeConfig(opts.bits)))
    throw new InvalidArgumentError(
      `--method ${opts.method} palettizes: choose --bits 1..8 (16 means no palettization)`,
    );
  await startBackend(opts.backend, opts.log);
  if (!runDir) {
    const { model } = loadLlama(from);
    try {
      return await exportPostTraining(opts, out, model, from, from);
    } finally {
      model.dispose();
    }
  }
  const run = readRun(from);
  const ckpt = loadCheckpoint(checkpointPath(from));
  const { model } = loadLlama(run.model);
  try {
    for (const [name, w] of ckpt.weights) {
      if (!model.getWeights().has(name)) continue; // palettization variables: restored below
      const t = tf.tensor(w.data, w.shape);
      model.setWeight(name, t);
      t.dispose();
    }
    // kmeans / rtn on a run: post-training palettization of its fine-tuned weights
    // (e.g. the 16-bit fine-tune → k-means baseline)
    if (opts.method !== 'auto') return await exportPostTraining(opts, out, model, run.model, from);
    const palettizer = new Palettizer(linearShapes(model), run.palettize);
    try {
      for (const [name, layer] of palettizer.layers) {
        const state = ckpt.palettizer[name];
        layer.setState?.(state);
        (layer.variables?.() ?? []).forEach((v, i) => {
          const saved = ckpt.weights.get(`${name}#var${i}`);
          if (!saved) return;
          const t = tf.tensor(saved.data, saved.shape);
          v.assign(t);
          t.dispose();
        });
      }
      await palettizer.prepare(model.getWeights());
      const palettes = await palettizer.export(model.getWeights());
      const written = writeExport(opts, out, await denseOf(model, palettes), palettes, run.model, {
        source: 'edkm finetune',
        step: String(ckpt.step),
        palettize: JSON.stringify(run.palettize),
      });
      return { out, source: from, method: describeConfig(run.palettize), ...written };
    } finally {
      palettizer.dispose();
    }
  } finally {
    model.dispose();
  }
}

/** k-means or round-to-nearest palettization of a loaded model's weights (a base model's or a run's). */
async function exportPostTraining(
  opts: ExportOptions,
  out: string,
  model: LlamaModel,
  copyFrom: string,
  source: string,
): Promise<ExportResult> {
  const config = opts.palettize ?? defaultPalettizeConfig(opts.bits);
  const palettes =
    opts.method === 'kmeans'
      ? await kmeansPalettes(model, config)
      : await rtnPalettes(model, config);
  const written = writeExport(opts, out, await denseOf(model, palettes), palettes, copyFrom, {
    source: `post-training ${opts.method}`,
    palettize: JSON.stringify(config),
  });
  return { out, source, method: `${opts.method} (post-training)`, ...written };
}

function linearShapes(model: LlamaModel): Map<string, [number, number]> {
  const w = model.getWeights();
  return new Map(model.linearWeightNames().map((n) => [n, w.get(n)!.shape as [number, number]]));
}

/** The weights that stay dense (the palettized ones are not read back). */
async function denseOf(
  model: LlamaModel,
  palettes: Map<string, PaletteTensor>,
): Promise<Map<string, DenseWeight>> {
  const out = new Map<string, DenseWeight>();
  for (const [name, v] of model.getWeights())
    if (!palettes.has(name))
      out.set(name, { shape: v.shape, data: (await v.data()) as Float32Array });
  return out;
}

/** Post-training k-means: DKM with a vanishing temperature is Lloyd's algorithm on the 16-bit values. */
export async function kmeansPalettes(
  model: LlamaModel,
  config: PalettizerConfig,
): Promise<Map<string, PaletteTensor>> {
  const global = { ...(config.global as object), maxIters: 30, tau: 1e-12, warmStart: false };
  const kmeans = new Palettizer(linearShapes(model), { ...config, global });
  try {
    await kmeans.prepare(model.getWeights());
    return await kmeans.export(model.getWeights());
  } finally {
    kmeans.dispose();
  }
}

/**
 * Post-training round-to-nearest: per output channel, symmetric — each row is divided by its
 * max |w| (an fp16 scale) and rounded to the nearest of K evenly spaced levels in [−1, 1].
 */
export async function rtnPalettes(
  model: LlamaModel,
  config: PalettizerConfig,
): Promise<Map<string, PaletteTensor>> {
  const out = new Map<string, PaletteTensor>();
  const shapes = linearShapes(model);
  const probe = new Palettizer(shapes, config); // which layers, at which bits
  const bitsOf = new Map(
    [...probe.layers].map(([n, l]) => [
      n,
      (l as unknown as { config: { bits: number } }).config.bits,
    ]),
  );
  probe.dispose();
  for (const [name, bits] of bitsOf) {
    const [rows, cols] = shapes.get(name)!;
    const data = (await model.getWeights().get(name)!.data()) as Float32Array;
    const k = 2 ** bits;
    const lut = Uint16Array.from({ length: k }, (_, j) => f32ToF16Bits(-1 + (2 * j) / (k - 1)));
    const scales = new Float32Array(rows);
    const indices = new Uint8Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      let max = 0;
      for (let c = 0; c < cols; c++) max = Math.max(max, Math.abs(data[r * cols + c]));
      // the scale as it will be stored (fp16), so that the rounding uses what the reader sees
      const s = f16BitsToF32(f32ToF16Bits(max || 1));
      scales[r] = s;
      for (let c = 0; c < cols; c++) {
        const x = data[r * cols + c] / s;
        indices[r * cols + c] = Math.max(0, Math.min(k - 1, Math.round(((x + 1) * (k - 1)) / 2)));
      }
    }
    out.set(name, {
      shape: [rows, cols],
      bits,
      clusterDim: 1,
      groupSize: rows,
      lut,
      indices,
      scales,
    });
  }
  return out;
}
