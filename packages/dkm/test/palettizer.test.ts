import '@edkm/backend-cpu';
import { InvalidArgumentError, tf, useBackend } from '@edkm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Palettizer, configFor, parsePalettizerConfig } from '../src/index';

describe('palettizer config', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('resolves global, exact names, regex patterns and null (skip)', () => {
    const cfg = parsePalettizerConfig({
      global: { bits: 3 },
      byName: {
        'lm_head.weight': { bits: 8 },
        're:.*embed.*': null,
        're:.*mlp.*': { clusterDim: 2 },
      },
    });
    expect(configFor(cfg, 'model.layers.0.self_attn.q_proj.weight')).toEqual({ bits: 3 });
    expect(configFor(cfg, 'lm_head.weight')).toEqual({ bits: 8 });
    expect(configFor(cfg, 'model.embed_tokens.weight')).toBeNull();
    expect(configFor(cfg, 'model.layers.1.mlp.up_proj.weight')).toEqual({ bits: 3, clusterDim: 2 });
    expect(configFor({}, 'x')).toBeNull();
  });

  it('rejects malformed configs with the place of the error', () => {
    expect(() => parsePalettizerConfig([])).toThrow(InvalidArgumentError);
    expect(() => parsePalettizerConfig({ globl: {} })).toThrow(/unknown key\(s\) globl/);
    expect(() => parsePalettizerConfig({ byName: { 're:(': { bits: 3 } } })).toThrow(
      /not a valid regular expression/,
    );
    expect(() => parsePalettizerConfig({ byName: { a: { bits: 12 } } })).toThrow(
      /byName "a": bits must be/,
    );
  });

  it('clusters only the configured weights and trains through the transform', async () => {
    const a = tf.variable(
      tf.randomNormal([8, 16], 0, 0.05, 'float32', 1),
      true,
      'a',
    ) as tf.Variable<tf.Rank.R2>;
    const b = tf.variable(
      tf.randomNormal([8, 16], 0, 0.05, 'float32', 2),
      true,
      'b',
    ) as tf.Variable<tf.Rank.R2>;
    const p = new Palettizer(
      new Map([
        ['a', [8, 16]],
        ['b', [8, 16]],
      ]),
      { global: { bits: 2 }, byName: { b: null } },
    );
    expect([...p.layers.keys()]).toEqual(['a']);
    const weights = new Map<string, tf.Tensor>([
      ['a', a],
      ['b', b],
    ]);
    await p.prepare(weights);
    expect(p.transform('b', b)).toBe(b);
    const grads = tf.variableGrads(
      () => p.transform('a', a).sum().add(p.transform('b', b).sum()) as tf.Scalar,
    );
    expect(grads.grads.a.shape).toEqual([8, 16]);
    const exported = await p.export(weights);
    expect([...exported.keys()]).toEqual(['a']);
    expect(exported.get('a')!.lut.length).toBe(4);
    p.dispose();
  });
});
