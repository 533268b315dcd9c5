// Our logits on a model folder (16-bit, palettized, or an `edkm export --format hf` folder), for
// bench/torch/check_hf_export.py to compare with transformers' on the Hugging Face export.
// Usage: tsx hf-logits.ts --model DIR [--backend cpu|webgpu] [--out logits.json]
import '@edkm/backend-cpu';
import '@edkm/backend-webgpu';
import { writeFileSync } from 'node:fs';
import { useBackend } from '@edkm/core';
import { loadModel } from '@edkm/palettized';
import { argValue, printJson } from './util';

const dir = argValue('model');
if (!dir) throw new Error('--model DIR is required');
const selection = await useBackend(argValue('backend') ?? 'auto');
const { model, tokenizer } = loadModel(dir);
const prompts = ['ROMEO:', 'Once upon a time, there was', 'Give three tips for staying healthy.'];
const out: { prompt: string; input_ids: number[]; last_logits: number[] }[] = [];
for (const prompt of prompts) {
  const ids = tokenizer.encode(prompt);
  const logits = model.forward([ids]);
  const last = logits.slice([0, ids.length - 1, 0], [1, 1, -1]);
  out.push({
    prompt,
    input_ids: ids,
    last_logits: Array.from((await last.data()) as Float32Array),
  });
  last.dispose();
  logits.dispose();
}
model.dispose();
const result = { bench: 'hf-logits', model: dir, backend: selection.description, prompts: out };
const file = argValue('out');
if (file) {
  writeFileSync(file, JSON.stringify(result));
  printJson({ bench: 'hf-logits', model: dir, backend: selection.description, out: file });
} else printJson(result);
