import '@edkm/backend-cpu';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PaletteTensor, dequantize } from '@edkm/codec';
import { FormatError, f32ToF16Bits, fromHalfBits, tf, toHalfBits, useBackend } from '@edkm/core';
import {
  Decoder,
  SafetensorsFile,
  defaultModelDir,
  generate,
  loadLlama,
  writeSafetensors,
} from '@edkm/llama';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type DenseWeight,
  PalettizedFile,
  decoderSource,
  formatInspection,
  inspect,
  isPalettized,
  loadModel,
  loadPalettized,
  writePalettized,
} from '../src/index';

const modelDir = defaultModelDir();
const work = mkdtempSync(join(tmpdir(), 'edkm-pal-'));

/** Round-to-nearest onto an evenly spaced LUT per group: a real palettization of real weights. */
function palettize(
  w: DenseWeight,
  bits: number,
  opts: { groups?: number[]; permute?: boolean; scales?: boolean } = {},
): PaletteTensor {
  const [rows, cols] = w.shape as [number, number];
  const groups = opts.groups ?? [rows];
  const k = 2 ** bits;
  const permutation = opts.permute
    ? Int32Array.from({ length: rows }, (_, i) => (i * 7 + 3) % rows) // 7 is coprime to the test sizes
    : undefined;
  const scales = opts.scales ? new Float32Array(rows) : undefined;
  const lut = new Uint16Array(groups.length * k);
  const indices = new Uint8Array(rows * cols);
  let s = 0;
  groups.forEach((n, g) => {
    let max = 0;
    for (let r = s; r < s + n; r++) {
      const row = permutation ? permutation[r] : r;
      let rowMax = 0;
      for (let c = 0; c < cols; c++) rowMax = Math.max(rowMax, Math.abs(w.data[row * cols + c]));
      if (scales) scales[r] = rowMax || 1;
      max = Math.max(max, scales ? 1 : rowMax);
    }
    for (let j = 0; j < k; j++) lut[g * k + j] = f32ToF16Bits(-max + (2 * max * j) / (k - 1));
    for (let r = s; r < s + n; r++) {
      const row = permutation ? permutation[r] : r;
      for (let c = 0; c < cols; c++) {
        const x = w.data[row * cols + c] / (scales ? scales[r] : 1);
        indices[r * cols + c] = Math.max(
          0,
          Math.min(k - 1, Math.round(((x + max) / (2 * max)) * (k - 1))),
        );
      }
    }
    s += n;
  });
  return {
    shape: [rows, cols],
    bits,
    clusterDim: 1,
    groupSize: rows,
    groupRows: opts.groups,
    lut,
    indices,
    scales,
    permutation,
  };
}

function denseWeights(): Map<string, DenseWeight> {
  const { model } = loadLlama(modelDir);
  const out = new Map<string, DenseWeight>();
  for (const [name, v] of model.getWeights())
    out.set(name, { shape: v.shape, data: v.dataSync() as Float32Array });
  model.dispose();
  return out;
}

describe('palettized export of the shipped model', () => {
  let dense: Map<string, DenseWeight>;
  let palettes: Map<string, PaletteTensor>;
  const exportDir = join(work, 'export');

  beforeAll(async () => {
    await useBackend('cpu');
    dense = denseWeights();
    palettes = new Map();
    let i = 0;
    for (const [name, w] of dense) {
      if (!name.endsWith('_proj.weight')) continue;
      const rows = w.shape[0];
      // every variant of the format on some layer: groups, scales, permutations, several bits
      const variant = i++ % 4;
      palettes.set(
        name,
        palettize(w, 2 + (i % 3), {
          groups: variant === 1 ? [rows / 2, rows / 4, rows / 4] : undefined,
          permute: variant === 2,
          scales: variant >= 2,
        }),
      );
    }
  });

  it('writes, reads back every palette and dense weight exactly, and re-exports identical bytes', () => {
    const report = writePalettized(exportDir, dense, palettes, {
      copyFrom: modelDir,
      metadata: { bits: 'mixed' },
    });
    const file = new PalettizedFile(join(exportDir, 'model.safetensors'));
    expect(file.palettizedNames()).toEqual([...palettes.keys()].sort());
    const back = new Map(file.palettizedNames().map((n) => [n, file.palette(n)]));
    for (const [name, p] of palettes) {
      // scales are stored in fp16: they read back as their fp16 rounding
      const scales = p.scales && fromHalfBits(toHalfBits(p.scales, 'fp16'), 'fp16');
      const got = back.get(name)!;
      const { lut, indices, scales: s, permutation, ...settings } = got;
      expect(settings).toEqual({
        shape: p.shape,
        bits: p.bits,
        clusterDim: p.clusterDim,
        groupSize: p.groupSize,
        ...(p.groupRows ? { groupRows: p.groupRows } : {}),
      });
      expect(sameBytes(lut, p.lut) && sameBytes(indices, p.indices)).toBe(true);
      expect(sameBytes(s, scales) && sameBytes(permutation, p.permutation)).toBe(true);
    }
    const denseBack = new Map(file.denseNames().map((n) => [n, file.dense(n)]));
    for (const name of file.denseNames())
      expect(sameBytes(denseBack.get(name)!.data, dense.get(name)!.data)).toBe(true); // bf16 already
    const again = join(work, 'again');
    writePalettized(again, denseBack, back, { copyFrom: exportDir, metadata: { bits: 'mixed' } });
    file.close();
    const same = (a: string, b: string) => Buffer.compare(readFileSync(a), readFileSync(b)) === 0;
    expect(same(join(again, 'model.safetensors'), join(exportDir, 'model.safetensors'))).toBe(true);
    expect(same(join(again, 'tokenizer.json'), join(modelDir, 'tokenizer.json'))).toBe(true);
    const palettizedWeights = [...palettes.values()].reduce(
      (s, p) => s + p.shape[0] * p.shape[1],
      0,
    );
    expect(report.palettizedWeights).toBe(palettizedWeights);
    const all = [...dense.values()].reduce((n, w) => n + w.data.length, 0);
    expect(report.denseWeights + palettizedWeights).toBe(all); // every weight of the model
  });

  it('the size report counts every byte of the file but the header', () => {
    const file = new PalettizedFile(join(exportDir, 'model.safetensors'));
    const r = file.sizeReport();
    file.close();
    const st = new SafetensorsFile(join(exportDir, 'model.safetensors'));
    let stored = 0;
    for (const e of st.tensors.values()) stored += e.end - e.begin;
    st.close();
    // permutations are counted at ⌈log2 rows⌉ bits per row, stored as I32
    const perms = [...palettes.values()].filter((p) => p.permutation);
    const permStored = perms.reduce((s, p) => s + 4 * p.shape[0], 0);
    expect(r.totalBytes - r.permutationBytes + permStored).toBe(stored);
    expect(r.denseWeights + r.palettizedWeights).toBe(
      [...dense.values()].reduce((n, w) => n + w.data.length, 0),
    );
    expect(r.bitsPerPalettizedWeight).toBeGreaterThan(2);
    expect(r.bitsPerPalettizedWeight).toBeLessThan(4.2);
    expect(r.compression).toBeGreaterThan(1.5);
  });

  it('loads as a model whose weights are the dequantized palettes, with the same logits', async () => {
    expect(isPalettized(exportDir)).toBe(true);
    expect(isPalettized(modelDir)).toBe(false);
    const before = tf.memory().numTensors;
    const loaded = loadModel(exportDir);
    expect(loaded.palettized?.palettizedWeights).toBeGreaterThan(0);
    const weights = loaded.model.getWeights();
    for (const [name, p] of palettes)
      expect(sameBytes(weights.get(name)!.dataSync() as Float32Array, dequantize(p))).toBe(true);
    // the reference: the 16-bit model with the dequantized weights assigned by hand
    const ref = loadLlama(modelDir);
    for (const [name, p] of palettes) {
      const t = tf.tensor(dequantize(p), p.shape);
      ref.model.setWeight(name, t);
      t.dispose();
    }
    const ids = [ref.tokenizer.encode('ROMEO: But soft, what light')];
    const [a, b] = [loaded.model.forward(ids), ref.model.forward(ids)];
    const [x, y] = [await a.data(), await b.data()];
    let worst = 0;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
    // dense weights went through bf16 on export: the shipped ones are bf16 already, so exact
    expect(worst).toBe(0);
    tf.dispose([a, b]);
    ref.model.dispose();
    loaded.model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('the Decoder reads the LUTs and packed indices directly: greedy tokens equal the dequantized model', async () => {
    const loaded = loadModel(exportDir);
    const source = decoderSource(exportDir);
    const decoder = new Decoder(loaded.config, source, { maxLength: 64 });
    const prompt = loaded.tokenizer.encode('ROMEO: But soft, what light');
    const [ids] = await decoder.generate([prompt], { maxNewTokens: 10, eosIds: [] });
    expect(ids).toEqual(await generate(loaded.model, prompt, { maxNewTokens: 10, eosIds: [] }));
    // weights on the device as stored: 2–4-bit palettes, bf16 embeddings and head
    expect(decoder.memory().weights).toBeLessThan(loaded.palettized!.totalBytes * 1.3);
    decoder.dispose();
    source.close();
    loaded.model.dispose();
  });

  it('Decoder.logits scores every position (the dequantized model’s logits); W8A8 prefill stays close', async () => {
    const loaded = loadModel(exportDir);
    const source = decoderSource(exportDir);
    const ids = loaded.tokenizer.encode(
      'ROMEO: But soft, what light through yonder window breaks? It is the east, and Juliet',
    );
    const t = ids.length;
    const idsT = tf.tensor2d([ids, ids.slice().reverse()], [2, t], 'int32');
    const before = tf.memory().numTensors;
    const exact = new Decoder(loaded.config, source, { maxLength: 64 });
    const w8a8 = new Decoder(loaded.config, source, {
      maxLength: 64,
      prefill: 'w8a8',
      w8a8MinRows: 2,
    });
    const outs = [loaded.model.logits(idsT), exact.logits(idsT), w8a8.logits(idsT)];
    const [r, e, q] = await Promise.all(outs.map((x) => x.data()));
    let scale = 0;
    for (const v of r) scale = Math.max(scale, Math.abs(v));
    let worst = 0;
    let num = 0;
    let den = 0;
    for (let i = 0; i < r.length; i++) {
      worst = Math.max(worst, Math.abs(e[i] - r[i]));
      num += (q[i] - r[i]) ** 2;
      den += r[i] ** 2;
    }
    expect(worst).toBeLessThan(1e-3 * scale);
    const rel = Math.sqrt(num / den);
    expect(rel).toBeGreaterThan(0); // W8A8 did run: it is not the exact product
    expect(rel).toBeLessThan(0.05);
    const V = loaded.config.vocabSize;
    const argmax = (v: ArrayLike<number>, p: number) => {
      let best = 0;
      for (let j = 1; j < V; j++) if (v[p * V + j] > v[p * V + best]) best = j;
      return best;
    };
    let same = 0;
    for (let p = 0; p < 2 * t; p++) if (argmax(q, p) === argmax(r, p)) same++;
    expect(same / (2 * t)).toBeGreaterThan(0.8);
    tf.dispose(outs);
    exact.dispose();
    w8a8.dispose();
    expect(() => new Decoder(loaded.config, source, { prefill: 'int4' as 'w8a8' })).toThrow(
      /prefill must be 'exact' or 'w8a8'/,
    );
    expect(tf.memory().numTensors).toBe(before);
    idsT.dispose();
    source.close();
    loaded.model.dispose();
  });

  it('inspect names every weight, its LUTs, scales and permutation, and the size', () => {
    const i = inspect(exportDir);
    expect(i.kind).toBe('palettized');
    const q = i.tensors.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight')!;
    expect(q.palette).toMatchObject({ clusterDim: 1, luts: 1 });
    expect(i.tensors.some((t) => t.palette?.luts === 3)).toBe(true);
    expect(i.tensors.some((t) => t.palette?.permuted)).toBe(true);
    const text = formatInspection(i);
    expect(text).toMatch(/compression\s+\d+\.\d\d×/);
    expect(text).toMatch(/model\.embed_tokens\.weight\s+BF16\s+\[4096, 288\]/);
    expect(inspect(modelDir).kind).toBe('safetensors');
  });

  it('loadLlama on an export says to use loadPalettized', () => {
    expect(() => loadLlama(exportDir)).toThrow(/palettized export.*loadPalettized/);
  });
});

describe('corrupt or hostile exports: a FormatError naming the file and the fault', () => {
  type Stored = Record<string, { dtype: string; shape: number[]; data: Uint8Array }>;
  interface Tamper {
    meta?: Record<string, string>;
    drop?: string;
    set?: Stored;
  }
  const i32 = (xs: number[]) => new Uint8Array(Int32Array.from(xs).buffer);

  /** Writes a small valid export, then rewrites its file with one part changed. */
  function tampered(name: string, change: Tamper): string {
    const dir = join(work, name.replace(/\W+/g, '-'));
    writePalettized(
      dir,
      new Map([['norm', { shape: [4], data: Float32Array.from([1, 2, 3, 4]) }]]),
      new Map([['w', smallPalette()]]),
    );
    const path = join(dir, 'model.safetensors');
    const st = new SafetensorsFile(path);
    const tensors: Stored = {};
    for (const [n, e] of st.tensors)
      tensors[n] = { dtype: e.dtype, shape: e.shape, data: st.read(n) };
    const meta = { ...st.metadata, ...change.meta };
    st.close();
    if (change.drop) delete tensors[change.drop];
    Object.assign(tensors, change.set);
    writeSafetensors(path, tensors as never, meta);
    return path;
  }

  it.each<[string, Tamper, RegExp]>([
    ['not an export', { meta: { format: 'pt' } }, /is not a palettized export/],
    ['a future version', { meta: { format_version: '9' } }, /version 9 is not supported/],
    ['settings not JSON', { meta: { 'w.palette': '{' } }, /settings of 'w' are not JSON/],
    [
      'settings malformed',
      { meta: { 'w.palette': '{"shape":[4],"bits":3}' } },
      /settings of 'w' are malformed/,
    ],
    ['a missing index part', { drop: 'w.indices' }, /has no 'w.indices'/],
  ])('%s: refused on open', (name, change, message) => {
    const path = tampered(name, change);
    expect(() => new PalettizedFile(path)).toThrow(FormatError);
    expect(() => new PalettizedFile(path)).toThrow(message);
  });

  it.each<[string, Tamper, RegExp]>([
    [
      'truncated indices',
      { set: { 'w.indices': { dtype: 'U8', shape: [5], data: new Uint8Array(5) } } },
      /'w.indices' has 5 bytes, 16 indices at 3 bits need 6/,
    ],
    [
      'a LUT of the wrong size',
      { set: { 'w.lut': { dtype: 'F16', shape: [1, 2, 2], data: new Uint8Array(8) } } },
      /LUT has 4 entries, expected 1×8×2/,
    ],
    [
      'a permutation with a repeat',
      { set: { 'w.permutation': { dtype: 'I32', shape: [4], data: i32([0, 1, 1, 2]) } } },
      /not a permutation/,
    ],
  ])('%s: refused when the weight is read', (name, change, message) => {
    const f = new PalettizedFile(tampered(name, change));
    expect(() => f.palette('w')).toThrow(FormatError);
    expect(() => f.palette('w')).toThrow(message);
    f.close();
  });

  it('a truncated file is caught by the safetensors reader', () => {
    const path = tampered('trunc', {});
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, bytes.length - 3));
    expect(() => new PalettizedFile(path)).toThrow(/truncated/);
  });

  it('writing refuses an invalid palette and a dense name that collides with a part', () => {
    const norm = new Map([['norm', { shape: [4], data: new Float32Array(4) }]]);
    const badLut = { ...smallPalette(), lut: new Uint16Array(3) };
    expect(() => writePalettized(join(work, 'bad1'), norm, new Map([['w', badLut]]))).toThrow(
      /w: LUT has 3 entries/,
    );
    const clash = new Map([...norm, ['x.lut', { shape: [1], data: new Float32Array(1) }]]);
    expect(() =>
      writePalettized(join(work, 'bad2'), clash, new Map([['w', smallPalette()]])),
    ).toThrow(/collides/);
    const badIndex = smallPalette();
    badIndex.indices[0] = 9;
    expect(() => dequantize(badIndex)).toThrow(/out of range/);
  });
});

function smallPalette(): PaletteTensor {
  return {
    shape: [4, 8],
    bits: 3,
    clusterDim: 2,
    groupSize: 4,
    lut: Uint16Array.from({ length: 16 }, (_, i) => f32ToF16Bits(i / 16)),
    indices: Uint8Array.from({ length: 16 }, (_, i) => i % 8),
  };
}

/** Byte equality of two typed arrays (both absent counts as equal). */
function sameBytes(a?: ArrayBufferView, b?: ArrayBufferView): boolean {
  if (!a || !b) return a === b;
  const bytes = (x: ArrayBufferView) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  return a.constructor === b.constructor && Buffer.compare(bytes(a), bytes(b)) === 0;
}
