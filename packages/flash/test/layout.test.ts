import { copyFileSync, cpSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError, roundToHalf } from '@edkm/core';
import { PalettizedFile } from '@edkm/palettized';
import { beforeAll, describe, expect, it } from 'vitest';
import { FFN_FILE, FlashLayout, RESIDENT_FILE, writeFlashLayout } from '../src/index';
import { denseTiny, firstDifference, modelDir, tempDir, writePalettizedTiny } from './helpers';

const expectSame = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  expect(firstDifference(a, b)).toBe(-1);

const work = tempDir('layout');
const dense = denseTiny();
const H = 288;
const I = 768;

/** Column i of a [rows, cols] matrix. */
const column = (data: Float32Array, rows: number, cols: number, i: number) =>
  Float32Array.from({ length: rows }, (_, r) => data[r * cols + i]);

describe('layout round trip', () => {
  for (const bundling of ['neuron', 'matrix'] as const) {
    it(`${bundling} bundling: every neuron's gate row, up row and down column come back exactly`, () => {
      const dir = join(work, bundling);
      const report = writeFlashLayout(modelDir, dir, { bundling });
      const layout = new FlashLayout(dir);
      expect(layout.manifest).toMatchObject({
        dtype: 'bf16',
        bundling,
        hiddenSize: H,
        intermediateSize: I,
        numLayers: 6,
        neuronBytes: 3 * H * 2,
      });
      expect(report.ffnBytes).toBe(6 * I * 3 * H * 2);
      // the 16-bit source stores the FFN at the same 2 bytes per weight
      expect(layout.manifest.source).toMatchObject({ kind: '16-bit', ffnBytes: report.ffnBytes });
      for (const l of [0, 5]) {
        const w = layout.readLayer(l);
        const p = `model.layers.${l}.mlp.`;
        expectSame(w.gate, dense.get(`${p}gate_proj.weight`)!.data);
        expectSame(w.up, dense.get(`${p}up_proj.weight`)!.data);
        for (const i of [0, 1, 400, I - 1])
          expectSame(
            w.down.subarray(i * H, (i + 1) * H),
            column(dense.get(`${p}down_proj.weight`)!.data, H, I, i),
          );
      }
      // one read per neuron when bundled, three otherwise, each inside the layer
      const ranges = layout.neuronRanges(2, [3, 4, 700]);
      expect(ranges).toHaveLength(bundling === 'neuron' ? 3 : 9);
      const base = layout.manifest.layerOffsets[2];
      for (const r of ranges) {
        expect(r.offset).toBeGreaterThanOrEqual(base);
        expect(r.offset + r.length).toBeLessThanOrEqual(base + layout.manifest.layerBytes);
      }
      // decoding neuron bytes read by offset gives the same rows
      const file = readFileSync(layout.ffnPath);
      const gate = new Float32Array(3 * H);
      const up = new Float32Array(3 * H);
      const down = new Float32Array(3 * H);
      layout.decodeInto(
        ranges.map((r) => file.subarray(r.offset, r.offset + r.length)),
        [2, 0, 1],
        gate,
        up,
        down,
      );
      const g = dense.get('model.layers.2.mlp.gate_proj.weight')!.data;
      expectSame(gate.subarray(2 * H, 3 * H), g.subarray(3 * H, 4 * H));
      expectSame(gate.subarray(0, H), g.subarray(4 * H, 5 * H));
      expectSame(
        down.subarray(H, 2 * H),
        column(dense.get('model.layers.2.mlp.down_proj.weight')!.data, H, I, 700),
      );
      const resident = layout.readResident();
      expect(resident.has('model.layers.0.mlp.gate_proj.weight')).toBe(false);
      expectSame(
        resident.get('model.layers.3.self_attn.k_proj.weight')!.data,
        dense.get('model.layers.3.self_attn.k_proj.weight')!.data,
      );
      expectSame(resident.get('lm_head.weight')!.data, dense.get('lm_head.weight')!.data);
    });
  }

  it("writes a palettized export dequantized to fp16, and counts the export's own FFN bytes", () => {
    const pal = writePalettizedTiny(join(work, 'pal'), dense);
    const dir = join(work, 'pal-flash');
    const report = writeFlashLayout(pal, dir);
    const layout = new FlashLayout(dir);
    expect(layout.manifest.dtype).toBe('fp16');
    expect(layout.manifest.source.kind).toBe('palettized');
    // 4-bit indices + one fp16 LUT of 16 entries per weight: about a quarter of the 16-bit bytes
    const ffnWeights = 6 * 3 * I * H;
    expect(layout.manifest.source.ffnBytes).toBe(
      (6 * 3 * ((ffnWeights / 18) * 4)) / 8 + 6 * 3 * 16 * 2,
    );
    expect(report.ffnBytes).toBe(2 * ffnWeights);
    const pf = new PalettizedFile(join(pal, 'model.safetensors'));
    const deq = pf.dequantizeAll();
    pf.close();
    const w = layout.readLayer(1);
    expectSame(w.gate, deq.get('model.layers.1.mlp.gate_proj.weight')!.data);
    expectSame(
      w.down.subarray(5 * H, 6 * H),
      column(deq.get('model.layers.1.mlp.down_proj.weight')!.data, H, I, 5),
    );
    expectSame(
      layout.readResident().get('model.layers.1.self_attn.o_proj.weight')!.data,
      deq.get('model.layers.1.self_attn.o_proj.weight')!.data,
    );
  });

  it('stores other dtypes on request (fp16 rounds, f32 is exact)', () => {
    const dir = join(work, 'fp16');
    writeFlashLayout(modelDir, dir, { dtype: 'fp16' });
    const g = dense.get('model.layers.0.mlp.gate_proj.weight')!.data;
    expectSame(new FlashLayout(dir).readLayer(0).gate, roundToHalf(g, 'fp16'));
    const dir32 = join(work, 'f32');
    writeFlashLayout(modelDir, dir32, { dtype: 'f32', bundling: 'matrix' });
    expectSame(new FlashLayout(dir32).readLayer(0).gate, g);
  });
});

describe('corrupt layouts', () => {
  let good: string;
  let bytes: Buffer;
  beforeAll(() => {
    good = join(work, 'good');
    writeFlashLayout(modelDir, good);
    bytes = readFileSync(join(good, FFN_FILE));
  });

  /** A copy of the good layout with ffn.flash replaced. */
  function variant(name: string, ffn: Buffer): string {
    const dir = join(work, name);
    cpSync(good, dir, { recursive: true });
    writeFileSync(join(dir, FFN_FILE), ffn);
    return dir;
  }

  /** The good file with its manifest edited (the data offset leaves room for it). */
  function withManifest(edit: (m: Record<string, unknown>) => void): Buffer {
    const len = bytes.readUInt32LE(12);
    const m = JSON.parse(bytes.subarray(16, 16 + len).toString('utf8'));
    edit(m);
    const json = Buffer.from(JSON.stringify(m));
    const out = Buffer.from(bytes);
    out.fill(0, 16, 4096);
    out.writeUInt32LE(json.length, 12);
    json.copy(out, 16);
    return out;
  }

  const cases: [string, () => Buffer, RegExp][] = [
    ['empty file', () => Buffer.alloc(0), /too short/],
    ['bad magic', () => Buffer.concat([Buffer.from('NOTFLASH'), bytes.subarray(8)]), /bad magic/],
    [
      'future version',
      () => {
        const b = Buffer.from(bytes);
        b.writeUInt32LE(9, 8);
        return b;
      },
      /version 9/,
    ],
    [
      'manifest length past the end',
      () => {
        const b = Buffer.from(bytes.subarray(0, 5000));
        b.writeUInt32LE(1e6, 12);
        return b;
      },
      /manifest length/,
    ],
    [
      'manifest not JSON',
      () => {
        const b = Buffer.from(bytes);
        b.write('{{{{', 16);
        return b;
      },
      /not valid JSON/,
    ],
    ['truncated data', () => bytes.subarray(0, bytes.length - 100), /past the end|truncated/],
    ['trailing bytes', () => Buffer.concat([bytes, Buffer.alloc(10)]), /layers end at/],
    [
      'unknown dtype',
      () =>
        withManifest((m) => {
          m.dtype = 'int3';
        }),
      /unknown dtype/,
    ],
    [
      'unknown bundling',
      () =>
        withManifest((m) => {
          m.bundling = 'rows';
        }),
      /bundling/,
    ],
    [
      'negative size',
      () =>
        withManifest((m) => {
          m.hiddenSize = -288;
        }),
      /hiddenSize/,
    ],
    [
      'wrong neuron bytes',
      () =>
        withManifest((m) => {
          m.neuronBytes = 100;
        }),
      /neuronBytes/,
    ],
    [
      'overlapping layers',
      () =>
        withManifest((m) => {
          (m.layerOffsets as number[])[3] -= 8;
        }),
      /overlaps/,
    ],
    [
      'missing layer offsets',
      () =>
        withManifest((m) => {
          m.layerOffsets = [4096];
        }),
      /layerOffsets/,
    ],
    [
      'hostile offset',
      () =>
        withManifest((m) => {
          (m.layerOffsets as number[])[0] = 1e300;
        }),
      /layerOffsets/,
    ],
    [
      'data over the manifest',
      () =>
        withManifest((m) => {
          m.layerOffsets = (m.layerOffsets as number[]).map((o) => o - 4096);
        }),
      /aligned|overlaps the manifest|layers end/,
    ],
    [
      'no source',
      () =>
        withManifest((m) => {
          m.source = null;
        }),
      /source/,
    ],
  ];
  for (const [name, make, message] of cases)
    it(`${name} → FormatError`, () => {
      const dir = variant(name.replace(/\W+/g, '-'), make());
      expect(() => new FlashLayout(dir)).toThrow(FormatError);
      expect(() => new FlashLayout(dir)).toThrow(message);
    });

  it('a config that does not match the manifest → FormatError', () => {
    const dir = variant('config', bytes);
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    cfg.intermediate_size = 512;
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    expect(() => new FlashLayout(dir)).toThrow(/does not match config.json/);
  });

  it('a resident file without a weight, or truncated → FormatError', () => {
    const dir = variant('resident', bytes);
    const st = join(dir, RESIDENT_FILE);
    truncateSync(st, 1000);
    expect(() => new FlashLayout(dir)).toThrow(FormatError);
    copyFileSync(join(modelDir, 'model.safetensors'), st); // a model file: has every weight, FFN too
    expect(() => new FlashLayout(dir)).not.toThrow();
    rmSync(st);
    expect(() => new FlashLayout(dir)).toThrow(/cannot open/);
  });
});
