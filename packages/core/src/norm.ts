import * as tf from '@tensorflow/tfjs-core';
import { DTypeError, ShapeError } from './errors';

/**
 * Fused RMSNorm kernels. Each backend plugin registers both; `normReference` is the ground truth.
 * RmsNorm: inputs {x: [R, C] f32, weight: [C]}, attrs {eps} → y [R, C]:
 *   y[r, c] = x[r, c] · ρ_r · weight[c], ρ_r = 1 / √(mean_c x[r, c]² + eps).
 * RmsNormGrad: inputs {x, weight, dy: [R, C]}, attrs {eps} → [dx [R, C], dweight [C]]:
 *   dx[r, c] = ρ_r·weight[c]·dy[r, c] − x[r, c]·ρ_r³/C · Σ_j dy[r, j]·weight[j]·x[r, j],
 *   dweight[c] = Σ_r dy[r, c]·x[r, c]·ρ_r.
 */
export const NormKernelNames = {
  /** The decoder's forward kernel (DecodeKernelNames.RmsNorm): the same name, one registration. */
  RmsNorm: 'EdkmRmsNorm',
  RmsNormGrad: 'EdkmRmsNormGrad',
} as const;

export interface RmsNormAttrs {
  eps: number;
}

/**
 * RMSNorm over the last axis, x / √(mean(x²) + eps) · weight, as one kernel forward and one
 * backward (instead of about six ops forward and a dozen backward). Differentiable in x and weight.
 */
export function rmsNormFused(x: tf.Tensor, weight: tf.Tensor, eps: number): tf.Tensor {
  const C = x.shape[x.rank - 1];
  if (weight.rank !== 1 || weight.shape[0] !== C)
    throw new ShapeError(`rmsNorm: weight must be [${C}], got [${weight.shape}]`);
  if (x.dtype !== 'float32' || weight.dtype !== 'float32')
    throw new DTypeError('rmsNorm: x and weight must be float32');
  const shape = x.shape;
  const attrs = { eps } as unknown as tf.NamedAttrMap;
  const f = tf.customGrad(((xi: tf.Tensor, w: tf.Tensor, save: tf.GradSaveFunc) => {
    const x2 = xi.reshape([-1, C]);
    save([x2, w]);
    const y = tf.engine().runKernel(NormKernelNames.RmsNorm, { x: x2, weight: w }, attrs);
    return {
      value: (y as tf.Tensor).reshape(shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = saved;
        const [dx, dw] = tf
          .engine()
          .runKernel(
            NormKernelNames.RmsNormGrad,
            { x: xs, weight: ws, dy: dy.reshape([-1, C]) },
            attrs,
          ) as tf.Tensor[];
        return [dx.reshape(shape), dw];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x, weight);
}

/** Plain float64 references of the RMSNorm kernels. */
export const normReference = {
  rmsNorm(x: Float32Array, weight: Float32Array, eps: number): Float32Array {
    const C = weight.length;
    const out = new Float32Array(x.length);
    for (let r = 0; r < x.length / C; r++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += x[r * C + c] ** 2;
      const rho = 1 / Math.sqrt(s / C + eps);
      for (let c = 0; c < C; c++) out[r * C + c] = x[r * C + c] * rho * weight[c];
    }
    return out;
  },
  rmsNormGrad(
    x: Float32Array,
    weight: Float32Array,
    dy: Float32Array,
    eps: number,
  ): { dx: Float32Array; dweight: Float32Array } {
    const C = weight.length;
    const dx = new Float32Array(x.length);
    const dw = new Float64Array(C);
    for (let r = 0; r < x.length / C; r++) {
      let s = 0;
      let dot = 0;
      for (let c = 0; c < C; c++) {
        const i = r * C + c;
        s += x[i] * x[i];
        dot += dy[i] * weight[c] * x[i];
      }
      const rho = 1 / Math.sqrt(s / C + eps);
      for (let c = 0; c < C; c++) {
        const i = r * C + c;
        dx[i] = rho * weight[c] * dy[i] - (x[i] * rho ** 3 * dot) / C;
        dw[c] += dy[i] * x[i] * rho;
      }
    }
    return { dx, dweight: Float32Array.from(dw) };
  },
};
