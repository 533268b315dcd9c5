import { DTypeError, ShapeError, gatherRows, scatterAddRows, tf } from '@edkm/core';
import type { Uniquified } from './uniquify';

function checkTensor(op: string, name: string, t: unknown, rank: number): asserts t is tf.Tensor {
  if (!(t instanceof tf.Tensor)) throw new DTypeError(`${op}: ${name} must be a tf.Tensor`);
  if (t.rank !== rank) {
    throw new ShapeError(`${op}: ${name} must be ${rank}-D, got shape [${t.shape}]`);
  }
  if (t.size === 0) throw new ShapeError(`${op}: ${name} is empty (shape [${t.shape}])`);
}

/**
 * The element rows of `u` as an int32 [N] tensor, the index input of core's gatherRows /
 * scatterAddRows ('code' indices are mapped through `codeToRow`).
 */
export function rowIndexTensor(u: Uniquified): tf.Tensor1D {
  const { n, indices, codeToRow } = u;
  if (indices?.length !== n) {
    throw new ShapeError(
      `rowIndexTensor: indices has ${indices?.length} entries, expected n = ${n}`,
    );
  }
  const rows = new Int32Array(n);
  if (u.indexForm === 'code') for (let i = 0; i < n; i++) rows[i] = codeToRow[indices[i]];
  else rows.set(indices);
  return tf.tensor1d(rows, 'int32');
}

/**
 * Rows of a [U, K] float32 table by an int32 [N] row list → [N, K] (core's gatherRows kernel;
 * differentiable in `table`). Indices are not range-checked on the device — that would need a
 * read-back — and rows outside [0, U) come out as zeros; `rowIndexTensor` is in range by construction.
 */
export function gatherFromTableTensor(table: tf.Tensor2D, indices: tf.Tensor1D): tf.Tensor2D {
  checkTensor('gatherFromTableTensor', 'table', table, 2);
  checkTensor('gatherFromTableTensor', 'indices', indices, 1);
  return gatherRows(table, indices);
}

/**
 * Sums the rows of `values` [N, K] per row index into a [numRows, K] table (core's
 * scatterAddRows kernel; differentiable in `values`). Out-of-range indices are dropped, unchecked.
 */
export function scatterToTableTensor(
  values: tf.Tensor2D,
  indices: tf.Tensor1D,
  numRows: number,
): tf.Tensor2D {
  checkTensor('scatterToTableTensor', 'values', values, 2);
  checkTensor('scatterToTableTensor', 'indices', indices, 1);
  return scatterAddRows(values, indices, numRows);
}
