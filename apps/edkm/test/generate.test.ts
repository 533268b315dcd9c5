// In-process: `edkm generate --prefill w8a8` reaches the Decoder, and what it cannot do is refused
// before a backend starts.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

await import('@edkm/backend-cpu');
const { exportModel, runGenerate } = await import('../src/index');

const root = join(__dirname, '../../..');
// a 3-bit export (round to nearest: a second), so that W8A8 has palettized weights to take
const model = join(mkdtempSync(join(tmpdir(), 'edkm-gen-')), 'rtn3');
beforeAll(async () => {
  await exportModel({
    model: join(root, 'models/edkm-tiny'),
    out: model,
    method: 'rtn',
    bits: 3,
    backend: 'cpu',
  });
}, 60_000);
// a prompt of more than 64 tokens, so that W8A8 takes the prefill (fewer rows stay exact)
const prompt = readFileSync(join(root, 'data/eval/shakespeare-val.txt'), 'utf8').slice(0, 400);

describe('edkm generate --prefill', () => {
  it('w8a8: the prompt through int8 products, then the same greedy tokens as exact here', async () => {
    const { Decoder, readLlamaFolder } = await import('@edkm/llama');
    const { decoderSource } = await import('@edkm/palettized');
    const { tf } = await import('@edkm/core');
    // the two prefills differ (int8 rounding), by little
    const { config, tokenizer } = readLlamaFolder(model);
    const ids = tokenizer.encode(prompt);
    const logitsOf = async (prefill: 'exact' | 'w8a8') => {
      const source = decoderSource(model);
      const d = new Decoder(config, source, { maxLength: ids.length, prefill });
      const l = d.logits(tf.tensor2d([ids], [1, ids.length], 'int32'));
      const v = (await l.data()) as Float32Array;
      tf.dispose(l);
      d.dispose();
      source.close();
      return v;
    };
    const [e, q] = [await logitsOf('exact'), await logitsOf('w8a8')];
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < e.length; i++) {
      diff = Math.max(diff, Math.abs(e[i] - q[i]));
      scale = Math.max(scale, Math.abs(e[i]));
    }
    expect(diff).toBeGreaterThan(0);
    expect(diff / scale).toBeLessThan(0.05);
    const base = { model, prompt, alpaca: false, backend: 'cpu', maxNewTokens: 3, greedy: true };
    const exact = await runGenerate({ ...base, prefill: 'exact' });
    const w8a8 = await runGenerate({ ...base, prefill: 'w8a8' });
    expect(exact.prompt_ids.length).toBeGreaterThan(64);
    expect(w8a8.prompt_ids).toEqual(exact.prompt_ids);
    expect(w8a8.ids).toHaveLength(3);
    expect(w8a8.ids).toEqual(exact.ids);
  }, 120_000);

  it('refuses an unknown prefill and w8a8 with --flash', async () => {
    const base = { model, prompt: 'ROMEO:', alpaca: false, backend: 'cpu', maxNewTokens: 1 };
    await expect(runGenerate({ ...base, prefill: 'int4' as 'w8a8' })).rejects.toThrow(
      /--prefill must be exact or w8a8, got 'int4'/,
    );
    await expect(
      runGenerate({
        ...base,
        prefill: 'w8a8',
        flash: { memoryBudget: '50%', predictor: 'all', neurons: 0.25, window: 4 },
      }),
    ).rejects.toThrow(/--prefill w8a8 runs in the Decoder over a model folder, not with --flash/);
  });
});
