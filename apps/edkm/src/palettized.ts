import { packIndices, unpackIndices } from '@edkm/codec';
import { FormatError, fromHalfBits, tf, toHalfBits } from '@edkm/core';
import { type Palettized, dequantize } from '@edkm/dkm';
import {
  type LlamaModel,
  SafetensorsFile,
  type TensorToWrite,
  decodeTensor,
  writeSafetensors,
} from '@edkm/llama';

/**
 * The palettized export: per clustered weight an fp16 LUT `<name>.lut` [groups, K, d] and n-bit
 * packed indices `<name>.indices` (U8), optional fp16 per-row `<name>.scales`, its settings in
 * the metadata; every other weight unchanged in bf16.
 */
export function writePalettized(
  path: string,
  model: LlamaModel,
  palettes: Map<string, Palettized>,
  extra: Record<string, string> = {},
): Promise<SizeReport> {
  return (async () => {
    const tensors: Record<string, TensorToWrite> = {};
    const meta: Record<string, string> = { format: 'edkm-palettized', ...extra };
    const report: SizeReport = {
      clusteredWeights: 0,
      clusteredBytes: 0,
      otherWeights: 0,
      otherBytes: 0,
    };
    for (const [name, w] of model.getWeights()) {
      const p = palettes.get(name);
      if (!p) {
        const data = toHalfBits((await w.data()) as Float32Array, 'bf16');
        tensors[name] = { dtype: 'BF16', shape: w.shape, data };
        report.otherWeights += w.size;
        report.otherBytes += data.byteLength;
        continue;
      }
      const k = 2 ** p.bits;
      const packed = packIndices(p.indices, p.bits);
      tensors[`${name}.lut`] = {
        dtype: 'F16',
        shape: [p.lut.length / (k * p.clusterDim), k, p.clusterDim],
        data: p.lut,
      };
      tensors[`${name}.indices`] = { dtype: 'U8', shape: [packed.length], data: packed };
      let bytes = p.lut.byteLength + packed.byteLength;
      if (p.scales) {
        const scales = toHalfBits(p.scales, 'fp16');
        tensors[`${name}.scales`] = { dtype: 'F16', shape: [p.scales.length], data: scales };
        bytes += scales.byteLength;
      }
      meta[`${name}.palette`] = JSON.stringify({
        shape: p.shape,
        bits: p.bits,
        clusterDim: p.clusterDim,
        groupSize: p.groupSize,
      });
      report.clusteredWeights += p.shape[0] * p.shape[1];
      report.clusteredBytes += bytes;
    }
    writeSafetensors(path, tensors, meta);
    return report;
  })();
}

export interface SizeReport {
  clusteredWeights: number;
  clusteredBytes: number;
  otherWeights: number;
  otherBytes: number;
}

/** Reads a palettized export back into dense float32 weights (hard-assigned: LUT[index] × scale). */
export function readPalettized(path: string): Map<string, { shape: number[]; data: Float32Array }> {
  const st = new SafetensorsFile(path);
  try {
    if (st.metadata.format !== 'edkm-palettized')
      throw new FormatError(`${path} is not an eDKM palettized export`);
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, entry] of st.tensors) {
      if (name.endsWith('.lut') || name.endsWith('.indices') || name.endsWith('.scales')) continue;
      out.set(name, { shape: entry.shape, data: decodeTensor(st.read(name), entry, path) });
    }
    for (const [key, value] of Object.entries(st.metadata)) {
      if (!key.endsWith('.palette')) continue;
      const name = key.slice(0, -'.palette'.length);
      const cfg = JSON.parse(value) as {
        shape: [number, number];
        bits: number;
        clusterDim: number;
        groupSize: number;
      };
      const n = (cfg.shape[0] * cfg.shape[1]) / cfg.clusterDim;
      const scales = st.tensors.has(`${name}.scales`)
        ? fromHalfBits(new Uint16Array(st.read(`${name}.scales`).slice().buffer), 'fp16')
        : undefined;
      const p: Palettized = {
        ...cfg,
        lut: new Uint16Array(st.read(`${name}.lut`).slice().buffer),
        indices: unpackIndices(st.read(`${name}.indices`), cfg.bits, n),
        scales,
      };
      out.set(name, { shape: cfg.shape, data: dequantize(p) });
    }
    return out;
  } finally {
    st.close();
  }
}

/** Loads dense weights (e.g. from readPalettized) into the model. */
export function assignWeights(
  model: LlamaModel,
  weights: Map<string, { shape: number[]; data: Float32Array }>,
): void {
  for (const [name, { shape, data }] of weights) {
    const t = tf.tensor(data, shape);
    model.setWeight(name, t);
    t.dispose();
  }
}
