import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type PaletteTensor, dequantize, validatePalette } from '@edkm/codec';
import { FormatError, toHalfBits } from '@edkm/core';
import {
  type ShardedWriteResult,
  type TensorSpec,
  expectedWeightShapes,
  parseLlamaConfig,
  writeShardedSafetensors,
} from '@edkm/llama';
import { type DenseWeight, MODEL_FILES } from './format';

export interface HfExportOptions {
  /** The Hugging Face folder whose config, tokenizer and generation config are copied. */
  copyFrom: string;
  /** Weight dtype (default bf16). fp16 holds an fp16 LUT's values exactly when there are no scales. */
  dtype?: 'bf16' | 'fp16' | 'f32';
  /** Largest shard (bytes of tensor data; default 5 GiB). */
  maxShardBytes?: number;
  metadata?: Record<string, string>;
}

export interface HfExportResult extends ShardedWriteResult {
  out: string;
  palettizedWeights: number;
  denseWeights: number;
}

/**
 * Writes the hard-assigned weights as a standard Hugging Face LLaMA folder that transformers,
 * lm-evaluation-harness or vLLM load as it is: every palettized weight dequantized (scale ·
 * LUT[index]), every other weight as given, in bf16 (or fp16 / f32) safetensors sharded at
 * `maxShardBytes`, with config and tokenizer files copied. The palette of each weight (bits,
 * cluster dim, group size and its LUT values) is recorded in the shards' metadata under
 * `edkm_palettes` (JSON), so that a tool can re-palettize the folder without searching. One weight
 * is dequantized at a time.
 */
export function writeHfExport(
  out: string,
  dense: Map<string, DenseWeight>,
  palettes: Map<string, PaletteTensor>,
  opts: HfExportOptions,
): HfExportResult {
  const configPath = join(opts.copyFrom, 'config.json');
  const config = parseLlamaConfig(JSON.parse(readFileSync(configPath, 'utf8')), configPath);
  const dtype = opts.dtype ?? 'bf16';
  const record: Record<string, unknown> = {};
  const specs: TensorSpec[] = [];
  let palettizedWeights = 0;
  let denseWeights = 0;
  for (const [name, shape] of expectedWeightShapes(config)) {
    const p = palettes.get(name);
    const d = dense.get(name);
    if (!p && !d) throw new FormatError(`writeHfExport: no weight '${name}' to write`);
    if (p) {
      validatePalette(p, name);
      record[name] = {
        bits: p.bits,
        clusterDim: p.clusterDim,
        groupSize: p.groupSize,
        lut: Buffer.from(p.lut.buffer, p.lut.byteOffset, p.lut.byteLength).toString('base64'),
        lutDtype: 'fp16',
        scales: p.scales ? 'per-row (applied, not recorded)' : undefined,
        permutation: p.permutation ? 'applied, not recorded' : undefined,
      };
      palettizedWeights += shape[0] * shape[1];
    } else denseWeights += shape.reduce((a, b) => a * b, 1);
    specs.push({ name, dtype: dtype === 'f32' ? 'F32' : dtype === 'bf16' ? 'BF16' : 'F16', shape });
  }
  mkdirSync(out, { recursive: true });
  const written = writeShardedSafetensors(
    out,
    specs,
    (spec, write) => {
      const p = palettes.get(spec.name);
      const values = p ? dequantize(p) : dense.get(spec.name)!.data;
      write(dtype === 'f32' ? values : toHalfBits(values, dtype));
    },
    {
      maxShardBytes: opts.maxShardBytes,
      metadata: { ...opts.metadata, edkm_palettes: JSON.stringify(record) },
    },
  );
  for (const f of MODEL_FILES)
    if (existsSync(join(opts.copyFrom, f))) copyFileSync(join(opts.copyFrom, f), join(out, f));
  return { ...written, out, palettizedWeights, denseWeights };
}
