// Real-shaped checkpoints end to end, in-process on the cpu backend: a sharded bf16 Llama-3-config
// model with tied embeddings and 128,256 tokens (a few MB) is made, fine-tuned one step with
// layer-wise checkpointing, exported (palettized and as a Hugging Face folder) and reloaded; a
// run that cannot fit is refused before loading.
import '@edkm/backend-cpu';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackendError, DeviceLimitError, tf, useBackend } from '@edkm/core';
import { INDEX_FILE, SafetensorsFile, loadLlama } from '@edkm/llama';
import { loadPalettized } from '@edkm/palettized';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMakeModel } from '../src/commands/make-model';
import { type FinetuneOptions, exportModel, finetune, silentProgress } from '../src/index';
import { parseBytes } from '../src/memory-plan';

const root = join(__dirname, '../../..');
const work = mkdtempSync(join(tmpdir(), 'edkm-scale-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const text = join(work, 'text.txt');
writeFileSync(
  text,
  readFileSync(join(root, 'data/tinyshakespeare/input.txt'), 'utf8').slice(0, 20_000),
);
const model = join(work, 'model');
const options = (out: string): FinetuneOptions => ({
  model,
  data: text,
  out,
  palettize: { global: { bits: 3 }, byName: { 'lm_head.weight': null } },
  steps: 1,
  batch: 1,
  seq: 12,
  gradAccum: 1,
  lr: 1e-3,
  warmup: 1,
  minLrRatio: 0.1,
  weightDecay: 0,
  clip: 1,
  seed: 1,
  saveEvery: 1,
  holdoutChars: 0,
  packing: false,
  trainEmbeddings: false,
  checkpointing: true,
});
const control = { backend: 'cpu', resume: false, progress: silentProgress, log: () => {} };

async function lastLogits(m: ReturnType<typeof loadLlama>['model']): Promise<Float32Array> {
  const logits = m.forward([[1, 300, 17, 4000, 2]]);
  const last = logits.slice([0, 4, 0], [1, 1, -1]);
  const v = (await last.data()) as Float32Array;
  tf.dispose([logits, last]);
  return v;
}

describe('a sharded bf16 Llama-3-config model, tied embeddings, 128,256 tokens', () => {
  beforeAll(async () => {
    await useBackend('cpu');
    runMakeModel({
      preset: 'llama-3-8b',
      out: model,
      layers: 2,
      hidden: 32,
      intermediate: 64,
      heads: 4,
      kvHeads: 2,
      tie: true,
      shardMb: 1,
    });
  });

  it('is sharded bf16 with an index', () => {
    const index = JSON.parse(readFileSync(join(model, INDEX_FILE), 'utf8'));
    const files = [...new Set(Object.values(index.weight_map))] as string[];
    expect(files.length).toBeGreaterThan(1);
    const st = new SafetensorsFile(join(model, files[0]));
    expect([...st.tensors.values()].every((e) => e.dtype === 'BF16')).toBe(true);
    st.close();
  });

  it('trains one checkpointed step, exports (palettized and HF) and reloads', async () => {
    const run = join(work, 'run');
    const exported = join(work, 'export-from-memory');
    const r = await finetune(options(run), { ...control, exportTo: exported });
    expect(r.steps).toBe(1);
    expect(Number.isFinite(r.finalLoss)).toBe(true);
    // 14 decoder linears palettized at 3 bits; the tied embedding stays dense
    expect(r.exportReport!.palettizedWeights).toBe(
      2 * (4 * 32 * 32 + 3 * 32 * 64) - 2 * 2 * 32 * 16,
    );
    expect(r.exportReport!.bitsPerPalettizedWeight).toBeLessThan(3.2);

    const pal = join(work, 'pal');
    const e = await exportModel({
      model: run,
      out: pal,
      method: 'auto',
      bits: 3,
      backend: 'cpu',
      denseDtype: 'f32',
    });
    expect(e.report!.palettizedWeights).toBe(r.exportReport!.palettizedWeights);
    const hf = join(work, 'hf');
    const h = await exportModel({
      model: run,
      out: hf,
      method: 'auto',
      bits: 3,
      backend: 'cpu',
      format: 'hf',
      hfDtype: 'f32',
      maxShardBytes: 2 ** 20,
    });
    expect(h.hf!.files).toContain(INDEX_FILE);
    const st = new SafetensorsFile(join(hf, h.hf!.files[0]));
    expect(JSON.parse(st.metadata.edkm_palettes)['model.layers.0.mlp.up_proj.weight'].bits).toBe(3);
    st.close();

    // the palettized export and the HF folder (both f32 dense) hold the same weights: the same
    // logits; the export written from memory at the end of training keeps bf16 dense weights
    const a = loadPalettized(pal);
    const b = loadLlama(hf);
    const c = loadPalettized(exported);
    try {
      expect(b.config.tieWordEmbeddings).toBe(true);
      const [la, lb, lc] = [
        await lastLogits(a.model),
        await lastLogits(b.model),
        await lastLogits(c.model),
      ];
      const worst = (x: Float32Array, y: Float32Array) =>
        x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
      expect(worst(la, lb)).toBeLessThan(1e-5);
      expect(worst(la, lc)).toBeLessThan(1e-2);
    } finally {
      a.model.dispose();
      b.model.dispose();
      c.model.dispose();
    }
  });

  it('refuses a run that does not fit the device before loading it (DEVICE_LIMIT)', async () => {
    const p = finetune(options(join(work, 'too-big')), {
      ...control,
      deviceMemory: parseBytes('1MiB'),
    });
    await expect(p).rejects.toThrow(BackendError);
    await expect(p).rejects.toThrow(DeviceLimitError);
    await expect(
      finetune(options(join(work, 'too-big-2')), { ...control, deviceMemory: 1 }),
    ).rejects.toThrow(/memory plan: weights .* it does not fit/);
    expect(parseBytes('139GiB')).toBe(139 * 2 ** 30);
    expect(() => parseBytes('lots')).toThrow(/--device-memory/);
  });
});
