import '../src/index';
import { tf, useBackend } from '@edkm/core';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';

const OPS = {
  mul: [(a: tf.Tensor, b: tf.Tensor) => tf.mul(a, b), (x: number, y: number) => x * y],
  add: [(a: tf.Tensor, b: tf.Tensor) => tf.add(a, b), (x: number, y: number) => x + y],
  sub: [(a: tf.Tensor, b: tf.Tensor) => tf.sub(a, b), (x: number, y: number) => x - y],
  div: [(a: tf.Tensor, b: tf.Tensor) => tf.div(a, b), (x: number, y: number) => x / y],
} as const;

/** numpy broadcasting, element by element from coordinates: the plain reference. */
function reference(
  f: (x: number, y: number) => number,
  a: Float32Array,
  aShape: number[],
  b: Float32Array,
  bShape: number[],
): { shape: number[]; values: Float32Array } {
  const rank = Math.max(aShape.length, bShape.length);
  const pad = (s: number[]) => [...new Array(rank - s.length).fill(1), ...s];
  const [pa, pb] = [pad(aShape), pad(bShape)];
  const shape = pa.map((d, i) => Math.max(d, pb[i]));
  const size = shape.reduce((x, y) => x * y, 1);
  const values = new Float32Array(size);
  const at = (s: number[], data: Float32Array, coord: number[]) => {
    let idx = 0;
    for (let d = 0; d < rank; d++) idx = idx * s[d] + (s[d] === 1 ? 0 : coord[d]);
    return data[idx];
  };
  for (let i = 0; i < size; i++) {
    const coord: number[] = [];
    let r = i;
    for (let d = rank - 1; d >= 0; d--) {
      coord[d] = r % shape[d];
      r = Math.floor(r / shape[d]);
    }
    values[i] = f(at(pa, a, coord), at(pb, b, coord));
  }
  return { shape, values };
}

describe('cpu plugin: broadcasting Multiply / Add / Sub / RealDiv', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('equal the element-by-element reference for any broadcast of two shapes', () => {
    const dim = fc.integer({ min: 1, max: 5 });
    fc.assert(
      fc.property(
        fc.array(dim, { minLength: 0, maxLength: 4 }),
        fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 4 }),
        fc.constantFrom(...(Object.keys(OPS) as (keyof typeof OPS)[])),
        (shape, ones, drop, op) => {
          // b: a's shape with some dims set to 1 and some leading dims dropped; either side may be b
          const bShape = shape.map((d, i) => (ones[i] ? 1 : d)).slice(Math.min(drop, shape.length));
          const a = tf.randomUniform(shape, 0.5, 2, 'float32', shape.length * 7 + drop);
          const b = tf.randomUniform(bShape, 0.5, 2, 'float32', drop * 3 + 1);
          const [tfOp, f] = OPS[op];
          for (const [x, y, xs, ys] of [
            [a, b, shape, bShape],
            [b, a, bShape, shape],
          ] as const) {
            const got = tfOp(x, y);
            const want = reference(
              f,
              x.dataSync() as Float32Array,
              [...xs],
              y.dataSync() as Float32Array,
              [...ys],
            );
            expect(got.shape).toEqual(want.shape);
            expect(got.dataSync()).toEqual(want.values);
            got.dispose();
          }
          tf.dispose([a, b]);
        },
      ),
      { numRuns: 300, seed: 9 },
    );
  });

  it('int32 operands keep tfjs semantics (its own kernel)', () => {
    const c = tf.mul(tf.tensor1d([2, 3], 'int32'), tf.tensor2d([[4], [5]], [2, 1], 'int32'));
    expect(c.dtype).toBe('int32');
    expect(Array.from(c.dataSync())).toEqual([8, 12, 10, 15]);
    const d = tf.sub(tf.tensor1d([7], 'int32'), tf.tensor2d([[2], [9]], [2, 1], 'int32'));
    expect(d.dtype).toBe('int32');
    expect(Array.from(d.dataSync())).toEqual([5, -2]);
  });
});
