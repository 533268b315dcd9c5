import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { IOError } from '@edkm/core';
import { SafetensorsFile } from '@edkm/llama';
import { FORMAT, PalettizedFile, type SizeReport } from './format';

export interface TensorSummary {
  name: string;
  dtype: string;
  shape: number[];
  bytes: number;
  /** For a palettized weight: bits, clusterDim, number of LUTs, scales, permutation. */
  palette?: { bits: number; clusterDim: number; luts: number; scales: boolean; permuted: boolean };
}

export interface Inspection {
  path: string;
  kind: 'palettized' | 'safetensors';
  fileBytes: number;
  metadata: Record<string, string>;
  /** config.json beside the weights, when there is one. */
  config?: Record<string, unknown>;
  tensors: TensorSummary[];
  size?: SizeReport;
}

/** What a model folder or a safetensors file (export, checkpoint, HF weights) holds. */
export function inspect(path: string): Inspection {
  if (!existsSync(path)) throw new IOError(`${path} does not exist`);
  const dir = statSync(path).isDirectory() ? path : undefined;
  const file = dir ? join(dir, 'model.safetensors') : path;
  if (!existsSync(file)) throw new IOError(`${dir} has no model.safetensors`);
  const configPath = dir && join(dir, 'config.json');
  const config =
    configPath && existsSync(configPath)
      ? (JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>)
      : undefined;
  const st = new SafetensorsFile(file);
  const metadata = st.metadata;
  const entries = [...st.tensors.values()].sort((a, b) => a.name.localeCompare(b.name));
  st.close();
  const base: Inspection = {
    path: file,
    kind: 'safetensors',
    fileBytes: statSync(file).size,
    metadata,
    config,
    tensors: entries.map((e) => ({
      name: e.name,
      dtype: e.dtype,
      shape: e.shape,
      bytes: e.end - e.begin,
    })),
  };
  if (metadata.format !== FORMAT) return base;
  const pf = new PalettizedFile(file);
  try {
    const tensors: TensorSummary[] = pf.denseNames().map((n) => {
      const e = entries.find((x) => x.name === n)!;
      return { name: n, dtype: e.dtype, shape: e.shape, bytes: e.end - e.begin };
    });
    for (const name of pf.palettizedNames()) {
      const parts = entries.filter((e) => e.name.startsWith(`${name}.`));
      const lut = parts.find((e) => e.name === `${name}.lut`)!;
      const settings = JSON.parse(metadata[`${name}.palette`]) as {
        shape: number[];
        bits: number;
        clusterDim: number;
      };
      tensors.push({
        name,
        dtype: `${settings.bits}-bit LUT`,
        shape: settings.shape,
        bytes: parts.reduce((s, e) => s + e.end - e.begin, 0),
        palette: {
          bits: settings.bits,
          clusterDim: settings.clusterDim,
          luts: lut.shape[0],
          scales: parts.some((e) => e.name === `${name}.scales`),
          permuted: parts.some((e) => e.name === `${name}.permutation`),
        },
      });
    }
    tensors.sort((a, b) => a.name.localeCompare(b.name));
    return { ...base, kind: 'palettized', tensors, size: pf.sizeReport() };
  } finally {
    pf.close();
  }
}

/** Bytes in the largest decimal unit that keeps the number ≥ 1 (B, kB, MB, GB). */
function mb(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (i < units.length - 1 && Math.abs(n) >= 1000) {
    n /= 1000;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(2)} ${units[i]}`;
}

/** A size report as a small table (the paper's headline: 12.6 GB → 2.5 GB for LLaMA-7B). */
export function formatSizeReport(r: SizeReport): string {
  const rows: [string, string][] = [
    ['palettized weights', r.palettizedWeights.toLocaleString('en-US')],
    ['  LUTs (fp16)', mb(r.lutBytes)],
    ['  indices (packed)', mb(r.indexBytes)],
    ['  per-row scales', mb(r.scaleBytes)],
    ['  permutations', mb(r.permutationBytes)],
    ['  bits per palettized weight', r.bitsPerPalettizedWeight.toFixed(3)],
    ['dense weights', `${r.denseWeights.toLocaleString('en-US')} (${mb(r.denseBytes)})`],
    ['total', `${mb(r.totalBytes)} = ${r.bitsPerWeight.toFixed(3)} bits/weight`],
    ['16-bit model', mb(r.sixteenBitBytes)],
    ['compression', `${r.compression.toFixed(2)}×`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

/** An inspection as text: one line per tensor, then the size report of an export. */
export function formatInspection(i: Inspection): string {
  const lines = [`${i.path} (${i.kind}, ${mb(i.fileBytes)})`];
  const meta = Object.entries(i.metadata).filter(([k]) => !k.endsWith('.palette'));
  if (meta.length) lines.push(`metadata: ${meta.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  const w = Math.max(...i.tensors.map((t) => t.name.length));
  for (const t of i.tensors) {
    const extra = t.palette
      ? ` ${t.palette.luts} LUT${t.palette.luts > 1 ? 's' : ''}, d=${t.palette.clusterDim}${t.palette.scales ? ', scales' : ''}${t.palette.permuted ? ', permuted' : ''}`
      : '';
    lines.push(
      `  ${t.name.padEnd(w)}  ${t.dtype.padEnd(10)} [${t.shape.join(', ')}]  ${t.bytes.toLocaleString('en-US')} B${extra}`,
    );
  }
  if (i.size) lines.push('', formatSizeReport(i.size));
  return lines.join('\n');
}
