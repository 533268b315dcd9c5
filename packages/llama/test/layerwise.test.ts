import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import '@edkm/backend-webgpu';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf, useBackend } from '@edkm/core';
import { testBackends } from '@edkm/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultModelDir, layerwiseStep, loadLlama, makeRandomLlama } from '../src/index';

const root = mkdtempSync(join(tmpdir(), 'edkm-lw-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const dir = join(root, 'm');
// tied embeddings (the head's and the lookup's gradients meet), GQA, 3 layers
makeRandomLlama(dir, {
  preset: 'llama-3-8b',
  layers: 3,
  hidden: 32,
  intermediate: 48,
  heads: 4,
  kvHeads: 2,
  vocab: 4100,
  tieEmbeddings: true,
  seed: 3,
  tokenizerFrom: defaultModelDir(),
});

describe.each(await testBackends())('layer-wise checkpointed step on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('gives the loss and every gradient of model.loss (one whole tape), group by group', async () => {
    const { model } = loadLlama(dir);
    try {
      const ids = [
        [1, 17, 300, 4099, 5, 8, 9, 2],
        [1, 40, 41, 42, 43, 44, 45, 46],
      ];
      const labels = ids.map((r, b) => r.map((y, t) => (b === 1 && t < 3 ? -100 : y)));
      const trainable = model.getWeights();
      const vars = [...trainable.values()];
      const names = [...trainable.keys()];
      const ref = tf.variableGrads(() => model.loss(ids, labels), vars);
      const refLoss = (await ref.value.data())[0];
      const order: string[] = [];
      const got = new Map<string, Float32Array>();
      const before = tf.memory().numTensors;
      const loss = await layerwiseStep(model, ids, labels, {
        trainable,
        onGradients: async (group, grads) => {
          order.push(group);
          for (const [n, g] of grads) got.set(n, (await g.data()) as Float32Array);
        },
      });
      expect(tf.memory().numTensors).toBe(before);
      expect(order).toEqual([
        'head',
        'model.layers.2',
        'model.layers.1',
        'model.layers.0',
        'embed',
      ]);
      expect(loss).toBeCloseTo(refLoss, 5);
      expect(got.size).toBe(names.length);
      for (const [i, n] of names.entries()) {
        const want = (await ref.grads[vars[i].name].data()) as Float32Array;
        const have = got.get(n)!;
        let scale = 1e-12;
        let worst = 0;
        for (let j = 0; j < want.length; j++) {
          scale = Math.max(scale, Math.abs(want[j]));
          worst = Math.max(worst, Math.abs(want[j] - have[j]));
        }
        expect(worst / scale, n).toBeLessThan(1e-4);
      }
      ref.value.dispose();
      tf.dispose(Object.values(ref.grads));
    } finally {
      model.dispose();
    }
  });
});
