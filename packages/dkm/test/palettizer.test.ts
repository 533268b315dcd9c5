import '@edkm/backend-cpu';
import { InvalidArgumentError, tf, useBackend } from '@edkm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { DkmTensor, Palettizer, configFor, parsePalettizerConfig } from '../src/index';

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

  it('names the package to import for a method that is not registered', () => {
    expect(() => parsePalettizerConfig({ global: { method: 'jlcm', bits: 2 } })).toThrow(
      /global: palettization method 'jlcm' is not registered: import '@edkm\/jlcm'/,
    );
    expect(() => new Palettizer(new Map([['a', [4, 4]]]), { global: { method: 'jlcm' } })).toThrow(
      InvalidArgumentError,
    );
    expect(() => parsePalettizerConfig({ byName: { a: { method: 'lloyd' } } })).toThrow(
      /byName "a": unknown palettization method 'lloyd' \(registered: dkm/,
    );
    expect(() =>
      Palettizer.registerMethod('dkm', { resolve: () => 0, create: () => null! }),
    ).toThrow(/built in/);
  });

  it('builds layers of a registered method, validates its options and collects its variables', async () => {
    /** A stand-in method: the weight times one trainable factor. */
    class ScaleLayer {
      readonly factor: tf.Variable;
      constructor(
        readonly shape: [number, number],
        initial: number,
      ) {
        this.factor = tf.variable(tf.scalar(initial));
      }
      async prepare() {}
      apply(w: tf.Tensor) {
        return w.mul(this.factor) as tf.Tensor2D;
      }
      async palettize(): Promise<never> {
        throw new Error('not palettized');
      }
      variables() {
        return [this.factor];
      }
      dispose() {
        this.factor.dispose();
      }
    }
    Palettizer.registerMethod('test-scale', {
      resolve: ({ method: _, ...options }: { method?: string; factor?: number }) => {
        for (const key of Object.keys(options))
          if (key !== 'factor') throw new InvalidArgumentError(`unknown option '${key}'`);
        const factor = options.factor ?? 1;
        if (!(factor > 0)) throw new InvalidArgumentError(`factor must be positive, got ${factor}`);
        return factor;
      },
      create: (shape, factor: number) => new ScaleLayer(shape, factor),
    });
    expect(Palettizer.methods()).toEqual(['dkm', 'test-scale']);
    const config = parsePalettizerConfig({
      global: { method: 'test-scale', factor: 2 },
      byName: { a: { method: 'dkm', bits: 2 }, c: null },
    });
    // an entry of another method does not inherit global's options; one of the same method does
    expect(configFor(config, 'a')).toEqual({ method: 'dkm', bits: 2 });
    const inherited = parsePalettizerConfig({ ...config, byName: { b: { factor: 3 } } });
    expect(configFor(inherited, 'b')).toEqual({
      method: 'test-scale',
      factor: 3,
    });
    expect(() => parsePalettizerConfig({ ...config, byName: { b: { factor: -1 } } })).toThrow(
      /byName "b": factor must be positive/,
    );
    expect(() => parsePalettizerConfig({ ...config, byName: { b: { bits: 2 } } })).toThrow(
      /byName "b": unknown option 'bits'/,
    );
    const shapes = new Map<string, [number, number]>([
      ['a', [4, 8]],
      ['b', [4, 8]],
      ['c', [4, 8]],
    ]);
    const p = new Palettizer(shapes, config);
    expect(p.layers.get('a')).toBeInstanceOf(DkmTensor);
    const scale = p.layers.get('b') as ScaleLayer;
    expect(p.variables()).toEqual([scale.factor]);
    const weights = new Map([...shapes.keys()].map((n) => [n, tf.ones([4, 8])]));
    await p.prepare(weights);
    const { grads } = tf.variableGrads(
      () => p.transform('b', weights.get('b') as tf.Tensor2D).sum() as tf.Scalar,
      p.variables(),
    );
    expect(await grads[scale.factor.name].data()).toEqual(new Float32Array([32]));
    tf.dispose([...weights.values(), ...Object.values(grads)]);
    p.dispose();
  });
});
