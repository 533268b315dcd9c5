import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { dequantize } from '@edkm/codec';
import { IOError, makeResident, tf } from '@edkm/core';
import { type LoadedLlama, SafetensorsFile, loadLlama } from '@edkm/llama';
import { FORMAT, PalettizedFile, type SizeReport } from './format';

export interface LoadedModel extends LoadedLlama {
  /** The export's size report when the folder is palettized, else undefined. */
  palettized?: SizeReport;
}

/** The weights file of a model folder (or the file itself). */
function weightsFile(path: string): string {
  if (!existsSync(path)) throw new IOError(`${path} does not exist`);
  return statSync(path).isDirectory() ? join(path, 'model.safetensors') : path;
}

/** Whether a model folder (or a .safetensors file) holds a palettized export. */
export function isPalettized(path: string): boolean {
  const file = weightsFile(path);
  if (!existsSync(file)) return false;
  const st = new SafetensorsFile(file);
  try {
    return st.metadata.format === FORMAT;
  } finally {
    st.close();
  }
}

/**
 * Loads a palettized model folder as a LLaMA model: the palettized weights are dequantized on
 * load (hard-assigned: scale · LUT[index]), so the model computes exactly what the exported
 * clustering gives.
 */
export function loadPalettized(dir: string): LoadedModel {
  const file = new PalettizedFile(weightsFile(dir));
  try {
    // one weight dequantized at a time and moved to the device (host memory: the largest weight)
    const palettized = new Set(file.palettizedNames());
    const loaded = loadLlama(dir, {
      weights: (name) => {
        let t: tf.Tensor;
        if (palettized.has(name)) {
          const p = file.palette(name);
          t = tf.tensor(dequantize(p), p.shape);
        } else {
          const w = file.dense(name);
          t = tf.tensor(w.data, w.shape);
        }
        makeResident(t);
        return t;
      },
    });
    return { ...loaded, palettized: file.sizeReport() };
  } finally {
    file.close();
  }
}

/** Loads a model folder, 16-bit or palettized alike. */
export function loadModel(dir: string): LoadedModel {
  return isPalettized(dir) ? loadPalettized(dir) : loadLlama(dir);
}
