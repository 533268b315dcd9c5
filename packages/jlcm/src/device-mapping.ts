import { nearestEntry, tf } from '@edkm/core';
import type { CodebookLayout } from './mapping';

/** The step's hard mapping and Jacobian, as tensors on the weight's backend. */
export interface DeviceMapping {
  /** Codebook row (g·K + j) of every vector [rows·cols/d], original order, int32. */
  index: tf.Tensor1D;
  /** ∂m/∂x per vector: [rows, cols] for d = 1, [rows·cols/d, d, d] otherwise. */
  jacobian: tf.Tensor;
}

/**
 * mapWeights (hard mapping and soft-mapping Jacobian) on the weight's backend, through core's
 * NearestEntry kernel (one pass over the weight; float64 on the cpu and wasm plugins, float32 in
 * WGSL): no read-back of the weight. Same semantics as the host function: x = w/s (x = 0 where
 * s = 0), idx = the first nearest entry of the row's codebook, J = (2/τ_g) Cov_A(c) with
 * A = softmax(−‖x − c‖²/τ_g). `codebooks` and `scales` are what the forward uses (fp16-rounded,
 * on the host: G·K·d and `rows` numbers); they and the per-row constants are uploaded per call.
 */
export function mapWeightsOnDevice(
  w: tf.Tensor2D,
  layout: CodebookLayout,
  codebooks: Float32Array,
  scales: Float32Array | null,
  tau: ArrayLike<number>,
): DeviceMapping {
  const { rows, cols, d, k, groupOf } = layout;
  const groups = codebooks.length / (k * d);
  const inverseScale = new Float32Array(rows);
  for (let r = 0; r < rows; r++)
    inverseScale[r] = scales ? (scales[r] === 0 ? 0 : 1 / scales[r]) : 1;
  return tf.tidy(() => {
    const { index, jacobian } = nearestEntry(
      w,
      tf.tensor1d(inverseScale),
      tf.tensor2d(codebooks, [groups, k * d]),
      tf.tensor1d(groupOf, 'int32'),
      tf.tensor1d(Float32Array.from(tau)),
      d,
    );
    return {
      index,
      jacobian: d === 1 ? jacobian.reshape([rows, cols]) : jacobian.reshape([-1, d, d]),
    };
  });
}

/**
 * Whether w has a NaN or ±Inf (tfjs's isFinite tests the bits on every backend). One scalar comes
 * back from the backend, not the weight.
 */
export async function hasNonFinite(w: tf.Tensor): Promise<boolean> {
  const probe = tf.tidy(() => tf.isFinite(w).cast('int32').min());
  const allFinite = (await probe.data())[0];
  probe.dispose();
  return allFinite !== 1;
}
