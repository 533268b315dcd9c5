import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import '@edkm/backend-webgpu';
import { DTypeError, ShapeError, tf, useBackend } from '@edkm/core';
import { seededRandom, testBackends } from '@edkm/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  gatherFromTable,
  gatherFromTableTensor,
  rowIndexTensor,
  scatterToTable,
  scatterToTableTensor,
  uniquify,
} from '../src/index';

const backends = await testBackends();

/** LLaMA-like weights with a few ±0 / ±Inf, small enough for WebGPU on lavapipe. */
function weights(n: number, seed: number): Float32Array {
  const rnd = seededRandom(seed);
  const x = Float32Array.from({ length: n }, () => (rnd() - 0.5) * 0.04);
  x.set([0, -0, Number.POSITIVE_INFINITY, -1e-30], 3);
  return x;
}

describe.each(backends)('tfjs adapters on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it.each(['compact', 'code'] as const)(
    'rowIndexTensor (%s) + gatherFromTableTensor reproduce the rounded weights exactly',
    async (index) => {
      for (const dtype of ['bf16', 'fp16'] as const) {
        const x = weights(500, 1);
        const u = uniquify(x, { dtype, index });
        const rows = rowIndexTensor(u);
        expect(rows.dtype).toBe('int32');
        expect(Array.from(await rows.data())).toEqual(Array.from(uniquify(x, { dtype }).indices));
        const k = 3;
        const table = Float32Array.from({ length: u.values.length * k }, (_, i) =>
          i % k === 0 ? u.values[i / k] : i * 0.25,
        );
        const out = gatherFromTableTensor(tf.tensor2d(table, [u.values.length, k]), rows);
        expect(out.shape).toEqual([500, k]);
        const compactRows = uniquify(x, { dtype }).indices;
        expect(Array.from(await out.data())).toEqual(
          Array.from(gatherFromTable(table, k, compactRows)),
        );
        tf.dispose([rows, out]);
      }
    },
  );

  it('scatterToTableTensor matches the plain scatterToTable', async () => {
    const x = weights(700, 2);
    const u = uniquify(x, { dtype: 'bf16' });
    const U = u.values.length;
    const rnd = seededRandom(3);
    const grads = Float32Array.from({ length: 700 * 2 }, () => rnd() - 0.5);
    const rows = rowIndexTensor(u);
    const sums = scatterToTableTensor(tf.tensor2d(grads, [700, 2]), rows, U);
    expect(sums.shape).toEqual([U, 2]);
    const expected = scatterToTable(grads, 2, u.indices, U);
    const actual = await sums.data();
    for (let i = 0; i < expected.length; i++) expect(actual[i]).toBeCloseTo(expected[i], 5);
    tf.dispose([rows, sums]);
  });

  it('the gather is differentiable in the table: its gradient is the scatter-add', async () => {
    const u = uniquify(Float32Array.from([1, 2, 1, 3, 1]), { dtype: 'bf16' });
    const rows = rowIndexTensor(u);
    const table = tf.tensor2d([10, 20, 30, 40, 50, 60], [3, 2]);
    const dy = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [5, 2]);
    const grad = tf.grad((t: tf.Tensor) => gatherFromTableTensor(t as tf.Tensor2D, rows).mul(dy))(
      table,
    );
    expect(Array.from(await grad.data())).toEqual([1 + 5 + 9, 2 + 6 + 10, 3, 4, 7, 8]);
    tf.dispose([rows, table, dy, grad]);
  });

  it('rejects empty tensors, non-tensors and wrong dtypes with typed errors', () => {
    const rows = tf.tensor1d([0, 1], 'int32');
    const table = tf.tensor2d([1, 2, 3, 4], [2, 2]);
    expect(() => gatherFromTableTensor(tf.zeros([0, 2]) as tf.Tensor2D, rows)).toThrow(ShapeError);
    expect(() => gatherFromTableTensor(table, tf.tensor1d([], 'int32'))).toThrow(/empty/);
    expect(() => gatherFromTableTensor(new Float32Array(4) as never, rows)).toThrow(DTypeError);
    expect(() => gatherFromTableTensor(table, tf.tensor1d([0, 1]))).toThrow(DTypeError);
    expect(() => gatherFromTableTensor(tf.tensor1d([1, 2]) as never, rows)).toThrow(ShapeError);
    expect(() => scatterToTableTensor(tf.zeros([0, 2]) as tf.Tensor2D, rows, 2)).toThrow(
      ShapeError,
    );
    expect(() => scatterToTableTensor(table, tf.tensor1d([0, 1, 1], 'int32'), 2)).toThrow(
      ShapeError,
    );
    expect(() => scatterToTableTensor(table.toInt() as tf.Tensor2D, rows, 2)).toThrow(DTypeError);
    tf.dispose([rows, table]);
  });
});
