import { InvalidArgumentError, tf } from '@edkm/core';
import type { ScoringModel, SequenceScores } from './model';

/** A causal LM as a tfjs function: int32 ids [batch, time] → logits [batch, time, vocab]. */
export type LogitsFn = (ids: tf.Tensor2D) => tf.Tensor3D | Promise<tf.Tensor3D>;

export interface LogitsModelOptions {
  logits: LogitsFn;
  encode: ScoringModel['encode'];
  maxLength: number;
  prefixTokenId?: number;
  /** Id used for right padding (any valid id; causal outputs do not see it). Default 0. */
  padId?: number;
}

/**
 * `model.score` for any tfjs causal LM: pads the batch on the right (a causal model's outputs at
 * real positions do not depend on later tokens, so no mask is needed), runs one forward pass,
 * takes the log-softmax in float32 on the backend and downloads only what is asked: the target
 * tokens' log-probs, the arg-max ids and, on request, each sequence's last row.
 */
export async function scoreWithLogits(
  logitsFn: LogitsFn,
  batch: number[][],
  opts: { lastRow?: boolean; padId?: number } = {},
): Promise<SequenceScores[]> {
  const B = batch.length;
  if (B === 0) return [];
  const T = Math.max(...batch.map((s) => s.length)) - 1;
  if (T < 1) throw new InvalidArgumentError('every sequence needs at least 2 tokens');
  const ids = new Int32Array(B * T).fill(opts.padId ?? 0);
  const targets = new Int32Array(B * T);
  const lastIdx = new Int32Array(B);
  batch.forEach((s, b) => {
    for (let t = 0; t < s.length - 1; t++) {
      ids[b * T + t] = s[t];
      targets[b * T + t] = s[t + 1];
    }
    lastIdx[b] = b * T + s.length - 2;
  });
  const input = tf.tensor2d(ids, [B, T], 'int32');
  let logits: tf.Tensor3D;
  try {
    logits = await logitsFn(input);
  } finally {
    input.dispose();
  }
  const V = logits.shape[2];
  const [lp, greedy, last] = tf.tidy(() => {
    const logp = tf.logSoftmax(logits.toFloat().reshape([B * T, V]));
    return [
      // row-wise gather (batchDims 1): no flat index, so B·T·V may exceed 2^31
      tf.gather(logp, tf.tensor2d(targets, [B * T, 1], 'int32'), 1, 1),
      tf.argMax(logits.reshape([B * T, V]), -1),
      opts.lastRow ? tf.gather(logp, tf.tensor1d(lastIdx, 'int32')) : null,
    ] as const;
  });
  logits.dispose();
  try {
    const [lpData, gData, lastData] = await Promise.all([
      lp.data() as Promise<Float32Array>,
      greedy.data() as Promise<Int32Array>,
      last ? (last.data() as Promise<Float32Array>) : Promise.resolve(null),
    ]);
    return batch.map((s, b) => {
      const n = s.length - 1;
      return {
        logProbs: lpData.slice(b * T, b * T + n),
        greedy: Int32Array.from(gData.subarray(b * T, b * T + n)),
        ...(lastData ? { lastRow: lastData.slice(b * V, (b + 1) * V) } : {}),
      };
    });
  } finally {
    tf.dispose([lp, greedy, ...(last ? [last] : [])]);
  }
}

/** A ScoringModel from a tfjs logits function and a tokenizer. */
export function fromLogitsFn(opts: LogitsModelOptions): ScoringModel {
  return {
    encode: opts.encode,
    maxLength: opts.maxLength,
    prefixTokenId: opts.prefixTokenId,
    score: (batch, o) => scoreWithLogits(opts.logits, batch, { ...o, padId: opts.padId }),
  };
}
