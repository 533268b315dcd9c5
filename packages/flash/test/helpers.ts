import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { f32ToF16Bits, seededRandom, toHalfBits } from '@edkm/core';
import {
  SafetensorsFile,
  type TensorToWrite,
  decodeTensor,
  defaultModelDir,
  writeSafetensors,
} from '@edkm/llama';
import { type DenseWeight, type PaletteTensor, writePalettized } from '@edkm/palettized';
import { afterAll } from 'vitest';

export const modelDir = defaultModelDir();

/** A fresh temporary folder, removed after the test file. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `edkm-flash-${prefix}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Every weight of the shipped model as float32. */
export function denseTiny(): Map<string, DenseWeight> {
  const st = new SafetensorsFile(join(modelDir, 'model.safetensors'));
  const out = new Map<string, DenseWeight>();
  for (const [name, e] of st.tensors)
    out.set(name, { shape: e.shape, data: decodeTensor(st.read(name), e, st.path) });
  st.close();
  return out;
}

/** Round-to-nearest onto an evenly spaced 4-bit fp16 LUT per tensor (no scales: exact in fp16). */
function palettize(w: DenseWeight, bits = 4): PaletteTensor {
  const [rows, cols] = w.shape as [number, number];
  const k = 2 ** bits;
  let max = 0;
  for (const v of w.data) max = Math.max(max, Math.abs(v));
  const lut = Uint16Array.from({ length: k }, (_, j) =>
    f32ToF16Bits(-max + (2 * max * j) / (k - 1)),
  );
  const indices = Uint8Array.from(w.data, (v) =>
    Math.max(0, Math.min(k - 1, Math.round(((v + max) / (2 * max)) * (k - 1)))),
  );
  return { shape: [rows, cols], bits, clusterDim: 1, groupSize: rows, lut, indices };
}

/** A palettized export of the shipped model (the FFN projections at 4 bits) in `out`. */
export function writePalettizedTiny(out: string, dense = denseTiny()): string {
  const palettes = new Map<string, PaletteTensor>();
  for (const [name, w] of dense) if (name.includes('.mlp.')) palettes.set(name, palettize(w));
  writePalettized(out, dense, palettes, { copyFrom: modelDir });
  return out;
}

/** Index of the first element where two arrays differ (−1 when equal, length included). */
export function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++)
    if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  return -1;
}

/**
 * A small random LLaMA folder (hidden 32, FFN 64, 2 layers, the shipped tokenizer) for tests that
 * need many forward passes or fits: weights N(0, 0.1²) in bf16, seeded.
 */
export function writeToyModel(out: string, seed = 1): string {
  mkdirSync(out, { recursive: true });
  const config = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8'));
  Object.assign(config, {
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 8,
  });
  writeFileSync(join(out, 'config.json'), JSON.stringify(config));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json'])
    copyFileSync(join(modelDir, f), join(out, f));
  const random = seededRandom(seed);
  const normal = (n: number, std: number) =>
    Float32Array.from(
      { length: n },
      () => std * Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()),
    );
  const V = config.vocab_size as number;
  const shapes: Record<string, number[]> = {
    'model.embed_tokens.weight': [V, 32],
    'lm_head.weight': [V, 32],
    'model.norm.weight': [32],
  };
  for (let l = 0; l < 2; l++) {
    const p = `model.layers.${l}.`;
    Object.assign(shapes, {
      [`${p}input_layernorm.weight`]: [32],
      [`${p}post_attention_layernorm.weight`]: [32],
      [`${p}self_attn.q_proj.weight`]: [32, 32],
      [`${p}self_attn.k_proj.weight`]: [16, 32],
      [`${p}self_attn.v_proj.weight`]: [16, 32],
      [`${p}self_attn.o_proj.weight`]: [32, 32],
      [`${p}mlp.gate_proj.weight`]: [64, 32],
      [`${p}mlp.up_proj.weight`]: [64, 32],
      [`${p}mlp.down_proj.weight`]: [32, 64],
    });
  }
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = name.endsWith('norm.weight')
      ? new Float32Array(n).fill(1)
      : normal(n, name.includes('embed') ? 1 : 0.2);
    tensors[name] = { dtype: 'BF16', shape, data: toHalfBits(data, 'bf16') };
  }
  writeSafetensors(join(out, 'model.safetensors'), tensors, { format: 'pt' });
  return out;
}
