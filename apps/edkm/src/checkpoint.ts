import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError } from '@edkm/core';
import { SafetensorsFile, type TensorToWrite, writeSafetensors } from '@edkm/llama';
import type { AdamWState } from './optim';

export const CHECKPOINT_FORMAT = 'edkm-checkpoint';
const VERSION = '1';

/** Everything a run needs to continue exactly where it stopped. */
export interface Checkpoint {
  /** Optimizer steps done. */
  step: number;
  /** Trainable weights (model weights and palettization variables) by name, float32. */
  weights: Map<string, { shape: number[]; data: Float32Array }>;
  optimizer: AdamWState;
  /** Per palettized layer, its resumable state (DKM: warm-start centroids, τ, step). */
  palettizer: Record<string, unknown>;
  /** The data stream's position after the last batch of `step`. */
  dataPosition: unknown;
  /** Per-step log kept for the loss plot. */
  history: { step: number; loss: number; lr: number; tokens: number }[];
}

export function checkpointPath(runDir: string): string {
  return join(runDir, 'checkpoint.safetensors');
}

/**
 * Writes the checkpoint as one safetensors file, atomically (temp file, fsync, rename): a kill or a
 * full disk during the write leaves the previous checkpoint as it was.
 */
export function saveCheckpoint(path: string, c: Checkpoint): void {
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, w] of c.weights)
    tensors[`weight:${name}`] = { dtype: 'F32', shape: w.shape, data: w.data };
  for (const [name, { m, v }] of Object.entries(c.optimizer.moments)) {
    const shape = c.weights.get(name)?.shape ?? [m.length];
    tensors[`adam.m:${name}`] = { dtype: 'F32', shape, data: m };
    tensors[`adam.v:${name}`] = { dtype: 'F32', shape, data: v };
  }
  writeSafetensors(path, tensors, {
    format: CHECKPOINT_FORMAT,
    version: VERSION,
    step: String(c.step),
    adam_step: String(c.optimizer.step),
    palettizer: JSON.stringify(c.palettizer),
    data_position: JSON.stringify(c.dataPosition ?? null),
    history: JSON.stringify(c.history),
  });
}

/** Reads a checkpoint, checking that it is one and that every part is there. */
export function loadCheckpoint(path: string): Checkpoint {
  if (!existsSync(path)) throw new FormatError(`no checkpoint at ${path}`);
  const st = new SafetensorsFile(path);
  try {
    const meta = st.metadata;
    if (meta.format !== CHECKPOINT_FORMAT)
      throw new FormatError(`${path} is not an eDKM checkpoint (format ${meta.format})`);
    if (meta.version !== VERSION)
      throw new FormatError(`${path}: checkpoint version ${meta.version} is not supported`);
    const json = (key: string) => {
      try {
        return JSON.parse(meta[key]);
      } catch {
        throw new FormatError(`${path}: checkpoint field '${key}' is missing or not JSON`);
      }
    };
    const step = Number(meta.step);
    const adamStep = Number(meta.adam_step);
    if (!Number.isSafeInteger(step) || step < 0 || !Number.isSafeInteger(adamStep))
      throw new FormatError(`${path}: bad step ${meta.step}`);
    const weights: Checkpoint['weights'] = new Map();
    const moments: AdamWState['moments'] = {};
    const f32 = (name: string) => {
      const e = st.tensors.get(name)!;
      if (e.dtype !== 'F32') throw new FormatError(`${path}: '${name}' is ${e.dtype}, not F32`);
      return new Float32Array(st.read(name).buffer);
    };
    for (const [name, e] of st.tensors) {
      if (name.startsWith('weight:'))
        weights.set(name.slice('weight:'.length), { shape: e.shape, data: f32(name) });
    }
    for (const name of st.tensors.keys()) {
      if (!name.startsWith('adam.m:')) continue;
      const w = name.slice('adam.m:'.length);
      if (!st.tensors.has(`adam.v:${w}`))
        throw new FormatError(`${path}: optimizer state of '${w}' has m but no v`);
      moments[w] = { m: f32(name), v: f32(`adam.v:${w}`) };
    }
    return {
      step,
      weights,
      optimizer: { step: adamStep, moments },
      palettizer: json('palettizer'),
      dataPosition: json('data_position') ?? undefined,
      history: json('history'),
    };
  } finally {
    st.close();
  }
}
