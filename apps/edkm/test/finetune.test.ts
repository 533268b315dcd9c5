// In-process: the export equals the fine-tuned model with hard-assigned clusters, and a full disk
// during a checkpoint loses nothing.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

// the checkpoint writer's system calls, with a switch that makes writes fail as on a full disk
const disk = vi.hoisted(() => ({ fullAfterWrites: Number.POSITIVE_INFINITY, writes: 0 }));
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  return {
    ...fs,
    writeSync: (...args: Parameters<typeof fs.writeSync>) => {
      if (++disk.writes > disk.fullAfterWrites)
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), {
          code: 'ENOSPC',
        });
      return fs.writeSync(...args);
    },
  };
});

await import('@edkm/backend-cpu');
const { IOError, fromHalfBits, tf, toHalfBits, useBackend } = await import('@edkm/core');
const { Palettizer } = await import('@edkm/dkm');
const { dequantize } = await import('@edkm/codec');
const { loadLlama } = await import('@edkm/llama');
const { loadModel } = await import('@edkm/palettized');
const { exportModel, finetune, loadCheckpoint, silentProgress } = await import('../src/index');
type Options = import('../src/index').FinetuneOptions;

const root = join(__dirname, '../../..');
const work = mkdtempSync(join(tmpdir(), 'edkm-ft-'));
const text = join(work, 'text.txt');
writeFileSync(
  text,
  readFileSync(join(root, 'data/tinyshakespeare/input.txt'), 'utf8').slice(0, 30_000),
);
const options = (out: string, steps: number): Options => ({
  model: join(root, 'models/edkm-tiny'),
  data: text,
  out,
  palettize: { global: null, byName: { 're:model\\.layers\\.0\\..*_proj\\.weight': { bits: 3 } } },
  steps,
  batch: 2,
  seq: 16,
  gradAccum: 2,
  lr: 1e-3,
  warmup: 1,
  minLrRatio: 0.1,
  weightDecay: 0.01,
  clip: 1,
  seed: 3,
  saveEvery: 1,
  holdoutChars: 0,
  packing: false,
  trainEmbeddings: false,
});
const control = { backend: 'cpu', resume: false, progress: silentProgress, log: () => {} };
/** A run's export at 3 bits with its dense weights in f32 (the fine-tuned values exactly). */
const exportF32 = (model: string, out: string, method: 'auto' | 'kmeans' = 'auto') =>
  exportModel({ model, out, method, bits: 3, denseDtype: 'f32', backend: 'cpu' });

afterEach(() => {
  disk.fullAfterWrites = Number.POSITIVE_INFINITY;
  disk.writes = 0;
});

describe('the export is the fine-tuned model with hard-assigned clusters', () => {
  const run = join(work, 'run');
  beforeAll(async () => {
    await useBackend('cpu');
    await finetune(options(run, 2), control);
  }, 120_000);

  it.each(['f32', 'bf16'] as const)('same logits (dense weights in %s)', async (denseDtype) => {
    const out = join(work, `export-${denseDtype}`);
    await exportModel({ model: run, out, method: 'auto', bits: 3, denseDtype, backend: 'cpu' });
    // by hand: the checkpoint's weights, the palettizer's state, a prepare and hard assignment
    const ckpt = loadCheckpoint(join(run, 'checkpoint.safetensors'));
    const { model, tokenizer } = loadLlama(join(root, 'models/edkm-tiny'));
    const weights = model.getWeights();
    const set = (name: string, data: Float32Array, shape: number[]) => {
      const t = tf.tensor(data, shape);
      model.setWeight(name, t);
      t.dispose();
    };
    for (const [name, w] of ckpt.weights) set(name, w.data, w.shape);
    if (denseDtype === 'bf16')
      for (const [name, w] of weights)
        set(
          name,
          fromHalfBits(toHalfBits((await w.data()) as Float32Array, 'bf16'), 'bf16'),
          w.shape,
        );
    const shapes = new Map(
      model.linearWeightNames().map((n) => [n, weights.get(n)!.shape as [number, number]]),
    );
    const palettizer = new Palettizer(shapes, options(run, 2).palettize);
    for (const [name, layer] of palettizer.layers)
      (layer as unknown as { setState(s: unknown): void }).setState(ckpt.palettizer[name]);
    // prepare on the checkpoint's (f32) weights, as the export does
    for (const [name, w] of ckpt.weights)
      if (palettizer.layers.has(name)) set(name, w.data, w.shape);
    await palettizer.prepare(weights);
    for (const [name, p] of await palettizer.export(weights)) set(name, dequantize(p), p.shape);
    palettizer.dispose();

    const exported = loadModel(out);
    expect(exported.palettized?.palettizedWeights).toBe(884_736);
    const ids = [tokenizer.encode('KING RICHARD III:\nNow is the winter of our discontent')];
    const [a, b] = [exported.model.forward(ids), model.forward(ids)];
    expect(Buffer.from((await a.data()).buffer)).toEqual(Buffer.from((await b.data()).buffer));
    tf.dispose([a, b]);
    exported.model.dispose();
    model.dispose();
  });
});

describe('a full disk during a checkpoint', () => {
  it('fails with an IOError, keeps the previous checkpoint, and the run resumes from it', async () => {
    const run = join(work, 'full');
    // steps 1 and 2 checkpoint; the disk fills up during step 3's checkpoint
    await finetune(options(run, 2), control);
    const before = readFileSync(join(run, 'checkpoint.safetensors'));
    disk.writes = 0;
    disk.fullAfterWrites = 3;
    await expect(finetune(options(run, 3), { ...control, resume: true })).rejects.toThrow(IOError);
    disk.fullAfterWrites = Number.POSITIVE_INFINITY;
    // nothing lost: the step-2 checkpoint is intact, no temp file is left
    expect(Buffer.compare(readFileSync(join(run, 'checkpoint.safetensors')), before)).toBe(0);
    const { readdirSync } = await vi.importActual<typeof import('node:fs')>('node:fs');
    expect(readdirSync(run).filter((f) => f.includes('.tmp-'))).toEqual([]);
    expect(loadCheckpoint(join(run, 'checkpoint.safetensors')).step).toBe(2);
    const resumed = await finetune(options(run, 3), { ...control, resume: true });
    expect(resumed.steps).toBe(1);
    expect(loadCheckpoint(join(run, 'checkpoint.safetensors')).step).toBe(3);
  }, 120_000);
});

describe('--marshal', () => {
  it('trains to the same weights, bit for bit, with the index lists held in host memory', async () => {
    const plain = join(work, 'unmarshaled');
    const marshaled = join(work, 'marshaled');
    // marshaling applies to index lists (the code-table path saves none): compare with them
    await finetune({ ...options(plain, 2), saveEvery: 2, indexLists: true }, control);
    await finetune({ ...options(marshaled, 2), saveEvery: 2, marshal: true }, control);
    const a = loadCheckpoint(join(plain, 'checkpoint.safetensors'));
    const b = loadCheckpoint(join(marshaled, 'checkpoint.safetensors'));
    expect([...b.weights.keys()]).toEqual([...a.weights.keys()]);
    for (const [name, w] of a.weights)
      expect(
        Buffer.compare(Buffer.from(w.data.buffer), Buffer.from(b.weights.get(name)!.data.buffer)),
      ).toBe(0);
    expect(b.history).toEqual(a.history);
  }, 120_000);
});

describe('JLCM layers in the per-layer config', () => {
  it('train, checkpoint, resume and export: the export computes what the trained (hard) forward computes', async () => {
    const run = join(work, 'jlcm');
    const jlcm = {
      ...options(run, 2),
      palettize: {
        global: null,
        byName: {
          're:model\\.layers\\.0\\.mlp\\..*': { method: 'jlcm', bits: 2, codebooks: 2 },
          're:model\\.layers\\.0\\.self_attn\\..*': { bits: 3 },
        },
      },
    } as Options;
    await finetune({ ...jlcm, steps: 1 }, control);
    await finetune(jlcm, { ...control, resume: true });
    const out = join(work, 'jlcm-export');
    const result = await exportF32(run, out);
    expect(result.report!.permutationBytes).toBeGreaterThan(0);
    const exported = loadModel(out);
    // the trained model's own forward: checkpoint weights and variables, palettizer state, transform
    const ckpt = loadCheckpoint(join(run, 'checkpoint.safetensors'));
    const { model, tokenizer } = loadLlama(join(root, 'models/edkm-tiny'));
    const weights = model.getWeights();
    const shapes = new Map(
      model.linearWeightNames().map((n) => [n, weights.get(n)!.shape as [number, number]]),
    );
    const palettizer = new Palettizer(shapes, jlcm.palettize);
    const assign = (v: import('@edkm/core').tf.Variable, data: Float32Array) => {
      const t = tf.tensor(data, v.shape);
      v.assign(t);
      t.dispose();
    };
    for (const [name, w] of ckpt.weights) if (weights.has(name)) assign(weights.get(name)!, w.data);
    for (const [name, layer] of palettizer.layers) {
      layer.setState?.(ckpt.palettizer[name]);
      (layer.variables?.() ?? []).forEach((v, i) =>
        assign(v, ckpt.weights.get(`${name}#var${i}`)!.data),
      );
    }
    await palettizer.prepare(weights);
    const mlp = [...palettizer.layers.keys()].filter((n) => n.includes('.mlp.'));
    const ids = [tokenizer.encode('First Citizen:\nBefore we proceed any further, hear me speak.')];
    // JLCM layers train their exact hard weight: with DKM layers fixed to their hard export too,
    // the trained forward and the export agree bit for bit
    const hard = await palettizer.export(weights);
    model.setWeightTransform((name, w) => (mlp.includes(name) ? palettizer.transform(name, w) : w));
    for (const [name, p] of hard)
      if (!mlp.includes(name)) assign(weights.get(name)!, dequantize(p));
    const [a, b] = [exported.model.forward(ids), model.forward(ids)];
    const [x, y] = [await a.data(), await b.data()];
    let worst = 0;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
    expect(worst).toBeLessThan(1e-4);
    tf.dispose([a, b]);
    palettizer.dispose();
    model.dispose();
    exported.model.dispose();
  }, 120_000);
});

describe('a 16-bit fine-tune (--bits 16) and its post-training baselines', () => {
  const run = join(work, 'dense-run');
  const dense = { global: null };
  beforeAll(async () => {
    await useBackend('cpu');
    await finetune({ ...options(run, 2), palettize: dense }, control);
  }, 120_000);

  it('trains every weight, exports them dense, and k-means of the run is k-means of its weights', async () => {
    const ckpt = loadCheckpoint(join(run, 'checkpoint.safetensors'));
    const base = loadLlama(join(root, 'models/edkm-tiny')).model;
    const moved = [...ckpt.weights].filter(([name, w]) => {
      const before = base.getWeights().get(name)!.dataSync();
      return w.data.some((x, i) => x !== before[i]);
    });
    expect(moved.length).toBeGreaterThan(40); // the decoder and head weights trained
    base.dispose();

    const out = join(work, 'dense-export');
    const r = await exportF32(run, out);
    expect(r.method).toBe('16-bit, no palettization');
    expect(r.report?.palettizedWeights).toBe(0);
    const exported = loadModel(out).model;
    for (const [name, w] of ckpt.weights)
      expect(exported.getWeights().get(name)!.dataSync()).toEqual(w.data);
    exported.dispose();

    // the run's k-means export = k-means of a model holding the run's weights
    const km = join(work, 'dense-kmeans');
    await exportF32(run, km, 'kmeans');
    const { model } = loadLlama(join(root, 'models/edkm-tiny'));
    for (const [name, w] of ckpt.weights) {
      const t = tf.tensor(w.data, w.shape);
      model.setWeight(name, t);
      t.dispose();
    }
    const { kmeansPalettes, defaultPalettizeConfig } = await import('../src/index');
    const expected = await kmeansPalettes(model, defaultPalettizeConfig(3));
    const got = loadModel(km).model;
    for (const [name, p] of expected)
      expect(got.getWeights().get(name)!.dataSync()).toEqual(dequantize(p));
    expect(expected.size).toBe(42);
    got.dispose();
    model.dispose();
    // two k-means exports of 42 weights on the cpu backend: ~40 s alone on 2 cores, over 60 under load
  }, 180_000);

  it('refuses split matmul precision off the webgpu backend, and an unknown precision, before any file', async () => {
    const out = join(work, 'split-cpu');
    await expect(
      finetune(options(out, 1), { ...control, matmulPrecision: 'split' }),
    ).rejects.toThrow(/split runs on the webgpu backend's int8 tensor cores, not on --backend cpu/);
    await expect(
      finetune(options(out, 1), { ...control, matmulPrecision: 'bf16' as 'split' }),
    ).rejects.toThrow(/'f32' or 'split', got 'bf16'/);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a config that clusters nothing unless it is the 16-bit one, and k-means at 16 bits', async () => {
    await expect(
      finetune(
        {
          ...options(join(work, 'none'), 1),
          palettize: { global: null, byName: { 're:nothing': { bits: 3 } } },
        },
        control,
      ),
    ).rejects.toThrow(/clusters no weight.*--bits 16/);
    await expect(
      exportModel({ model: run, out: join(work, 'x'), method: 'kmeans', bits: 16, backend: 'cpu' }),
    ).rejects.toThrow(/--method kmeans palettizes: choose --bits 1\.\.8/);
  });
});
