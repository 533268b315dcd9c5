import { backendBytes, seededRandom, tf, useBackend } from '@edkm/core';
import { describe, expect, it } from 'vitest';
import '@tensorflow/tfjs-backend-cpu'; // the plain reference backend
import '../src/index';

const rand = (n: number, seed: number) => {
  const r = seededRandom(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
};

/** The same op on wasm and on tfjs's plain cpu backend: same values (exactly, or to `tol` for sums). */
async function sameAsCpu(f: () => tf.Tensor, tol = 0): Promise<void> {
  await useBackend('wasm');
  const got = f();
  const g = { shape: got.shape, dtype: got.dtype, values: Array.from(await got.data()) };
  await tf.setBackend('cpu');
  const want = f();
  const w = { shape: want.shape, dtype: want.dtype, values: Array.from(await want.data()) };
  await useBackend('wasm');
  if (tol === 0) expect(g).toEqual(w);
  else {
    expect([g.shape, g.dtype]).toEqual([w.shape, w.dtype]);
    g.values.forEach((v, i) => expect(Math.abs(v - w.values[i])).toBeLessThanOrEqual(tol));
  }
}

describe('wasm plugin: tfjs kernels it replaces or adds', () => {
  it('GatherV2 on every axis, with batchDims, on int32', async () => {
    const x = rand(2 * 3 * 4 * 5, 1);
    await sameAsCpu(() =>
      tf.gather(tf.tensor(x, [2, 3, 4, 5]), tf.tensor1d([2, 0, 2], 'int32'), 0 + 1),
    );
    await sameAsCpu(() => tf.gather(tf.tensor(x, [6, 20]), tf.tensor1d([5, 1, 1, 0], 'int32')));
    await sameAsCpu(() =>
      tf.gather(tf.tensor(x, [2, 3, 4, 5]), tf.tensor2d([1, 3, 0, 0], [2, 2], 'int32'), 3),
    );
    // row-wise (batchDims 1): each row's own index, as in scoring each position's target
    await sameAsCpu(() =>
      tf.gather(
        tf.tensor(x, [12, 10]),
        tf.tensor2d(
          [...Array(12).keys()].map((i) => (i * 7) % 10),
          [12, 1],
          'int32',
        ),
        1,
        1,
      ),
    );
    await sameAsCpu(() =>
      tf.gather(tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2], 'int32'), tf.tensor1d([2, 2, 0], 'int32')),
    );
  });

  it('GatherV2 rejects an out-of-range index', async () => {
    await useBackend('wasm');
    expect(() => tf.gather(tf.tensor2d(rand(6, 2), [3, 2]), tf.tensor1d([3], 'int32'))).toThrow(
      /not in \[0, 2\]/,
    );
  });

  it('UnsortedSegmentSum (absent from tfjs-backend-wasm): the gradient of a gather', async () => {
    const ids = [3, 0, 3, 7, -1, 2, 3, 9];
    await sameAsCpu(
      () => tf.unsortedSegmentSum(tf.tensor(rand(40, 3), [8, 5]), tf.tensor1d(ids, 'int32'), 8),
      1e-6, // three rows into one segment: float32 sums in another order
    );
    // int32 stays int32 (as in the cpu plugin; tfjs's own cpu kernel returns float32)
    const ints = tf.unsortedSegmentSum(
      tf.tensor1d([5, 6, 7], 'int32'),
      tf.tensor1d([1, 1, 0], 'int32'),
      2,
    );
    expect(ints.dtype).toBe('int32');
    expect(Array.from(await ints.data())).toEqual([7, 11]);
    await sameAsCpu(() => {
      const table = tf.tensor(rand(18, 4), [6, 3]);
      const y = tf.tensor(rand(12, 5), [4, 3]);
      const idx = tf.tensor1d([1, 4, 1, 0], 'int32');
      return tf.grad((t: tf.Tensor) => tf.gather(t, idx).mul(y).sum())(table);
    }, 1e-6);
  });

  it('Identity and a same-dtype Cast share the buffer; other casts convert as tfjs does', async () => {
    await useBackend('wasm');
    const start = backendBytes();
    const x = tf.tensor1d(rand(1000, 9));
    const copy = tf.clone(x);
    const same = x.cast('float32');
    expect(backendBytes() - start).toBe(4000);
    x.dispose();
    expect(Array.from(await copy.data())).toEqual(Array.from(await same.data()));
    tf.dispose([copy, same]);
    expect(backendBytes()).toBe(start);
    await sameAsCpu(() => tf.tensor1d([1.7, -2.5, 3, 0.2]).cast('int32'));
    await sameAsCpu(() => tf.tensor1d([1, 0, 3], 'int32').cast('bool').cast('float32'));
  });
  it('Slice: every rank, contiguous and strided, short and long runs, int32 and bool', async () => {
    const x = rand(3 * 4 * 5 * 6 * 7, 5);
    const shape = [3, 4, 5, 6, 7];
    const cases: [number[], number[]][] = [
      [
        [1, 0, 2, 0, 3],
        [2, 4, 2, 6, 4],
      ],
      [
        [0, 1, 0, 2, 0],
        [3, -1, 5, 3, 7],
      ],
      [
        [2, 3, 4, 5, 6],
        [1, 1, 1, 1, 1],
      ],
      [
        [1, 0, 0, 0, 0],
        [1, 4, 5, 6, 7],
      ], // contiguous
    ];
    for (const [begin, size] of cases)
      await sameAsCpu(() => tf.slice(tf.tensor(x, shape), begin, size));
    // a column of a tall table (one-element runs) and a long-run block
    const table = rand(5000 * 4, 6);
    await sameAsCpu(() => tf.slice(tf.tensor2d(table, [5000, 4]), [0, 1], [-1, 1]));
    await sameAsCpu(() => tf.slice(tf.tensor2d(table, [40, 500]), [3, 100], [30, 300]));
    await sameAsCpu(() => tf.slice(tf.tensor(x, [210, 12]), [5], [100]));
    await sameAsCpu(() => tf.slice(tf.tensor1d(x.slice(0, 50)), [7], [20]));
    const ints = Int32Array.from(x, (v) => Math.round(v * 1000));
    await sameAsCpu(() => tf.slice(tf.tensor(ints, [6, 7, 60], 'int32'), [1, 2, 3], [4, 3, 50]));
    await sameAsCpu(() =>
      tf.slice(
        tf.tensor(
          Array.from(x.slice(0, 24), (v) => v > 0),
          [4, 6],
          'bool',
        ),
        [1, 1],
        [2, 4],
      ),
    );
    await sameAsCpu(() => tf.slice(tf.tensor2d(table, [5000, 4]), [10, 1], [0, 2]));
  });

  it('Concat: every axis, short and long runs, several inputs, int32, empty inputs', async () => {
    const a = rand(2 * 3 * 40, 7);
    const b = rand(2 * 3 * 40, 8);
    for (const axis of [0, 1, 2, -1])
      await sameAsCpu(() =>
        tf.concat(
          [tf.tensor(a, [2, 3, 40]), tf.tensor(b, [2, 3, 40]), tf.tensor(a, [2, 3, 40])],
          axis,
        ),
      );
    const col = rand(5000, 9);
    await sameAsCpu(() =>
      tf.concat([tf.tensor2d(col, [5000, 1]), tf.zeros([5000, 2]), tf.tensor2d(col, [5000, 1])], 1),
    );
    await sameAsCpu(() =>
      tf.concat(
        [tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32'), tf.tensor2d([5, 6], [2, 1], 'int32')],
        1,
      ),
    );
    await sameAsCpu(() => tf.concat([tf.tensor2d(col, [50, 100]), tf.zeros([50, 0])], 1));
    await sameAsCpu(() => tf.concat([tf.tensor2d(col, [50, 100]), tf.tensor2d(col, [50, 100])], 0));
  });
});
