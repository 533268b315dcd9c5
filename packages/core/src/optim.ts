import * as tf from '@tensorflow/tfjs-core';
import { DTypeError, InvalidArgumentError, ShapeError } from './errors';

/**
 * The optimizer's kernels: a global gradient norm and one AdamW update per parameter, on the
 * device, with no read-back (the clip factor stays a device tensor). Each backend plugin registers
 * all three; `reference` below is the ground truth.
 *
 * Tensors of any shape are read as flat arrays.
 * SumSquares: inputs {x: [N] f32, acc: [S] f32}, attrs {offset} — writes, in place,
 *   acc[offset + j] = Σ x[i]² over chunk j of x for j < sumSquaresChunks(N) (chunk j is
 *   [j·c, min(N, (j+1)·c)) with c = ⌈N / chunks⌉); returns acc (the same data).
 * ClipScale: inputs {acc: [S]}, attrs {maxNorm} → [2] = [norm, scale]: norm = √Σ acc, scale =
 *   maxNorm / norm when maxNorm > 0 and norm > maxNorm, else 1 (NaN stays NaN).
 * AdamW: inputs {w, g, m, v: [N] f32, clip: [2]}, attrs {lr, beta1, beta2, eps, weightDecay,
 *   step} — updates w, m, v in place with the gradient g·clip[1]:
 *   m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g², w ← w·(1 − lr·wd) − lr·(m/c1) / (√(v/c2) + eps),
 *   c1 = 1 − β1^step, c2 = 1 − β2^step; returns w (the same data).
 *   An optional input {sched: [4] f32} = adamwSchedule(attrs) = [lr, 1 − lr·wd, c1, c2] overrides
 *   lr, weightDecay and step: a step recorded once (captureGraph) then replays with the schedule
 *   rewritten on the device instead of baked into the kernel's uniforms.
 * CopyInto: inputs {src, dst: same size f32} — dst's values become src's, in place; returns dst
 *   (the same data). State carried from one step to the next (DKM's warm-start centroids) stays in
 *   the same buffer, so a recorded step replays with it.
 */
export const OptimKernelNames = {
  SumSquares: 'EdkmSumSquares',
  ClipScale: 'EdkmClipScale',
  AdamW: 'EdkmAdamW',
  CopyInto: 'EdkmCopyInto',
} as const;

export interface SumSquaresAttrs {
  offset: number;
}
export interface ClipScaleAttrs {
  maxNorm: number;
}
export interface AdamWAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number;
}

/**
 * The step-dependent values of an AdamW step in float64: [lr, 1 − lr·wd, 1 − β1^step, 1 − β2^step]
 * (the learning rate, the decay factor and the two bias corrections).
 */
export function adamwStepValues(a: AdamWAttrs): [number, number, number, number] {
  return [a.lr, 1 - a.lr * a.weightDecay, 1 - a.beta1 ** a.step, 1 - a.beta2 ** a.step];
}

/** adamwStepValues as the kernels' optional `sched` input holds them (float32). */
export function adamwSchedule(a: AdamWAttrs): Float32Array {
  return Float32Array.from(adamwStepValues(a));
}

/**
 * How many partial sums SumSquares writes for an N-element tensor, ⌈N / 4096⌉ up to 1024:
 * a workgroup per chunk, enough of them to keep a GPU busy (64Ki-element chunks left a 7.7M
 * model's 57 sums latency-bound at 60 µs each on an H200).
 */
export function sumSquaresChunks(n: number): number {
  return Math.max(1, Math.min(1024, Math.ceil(n / 4096)));
}

function flat(t: tf.Tensor, op: string, role: string): void {
  if (t.dtype !== 'float32') throw new DTypeError(`${op}: ${role} must be float32, got ${t.dtype}`);
}

/**
 * The global L2 norm of `grads` and the factor that clips it to `maxNorm` (0 = no clipping), as a
 * device tensor [norm, scale]: nothing is read back.
 */
export function globalNormClip(grads: tf.Tensor[], maxNorm: number): tf.Tensor1D {
  if (!(maxNorm >= 0)) throw new InvalidArgumentError(`maxNorm must be ≥ 0, got ${maxNorm}`);
  const sizes = grads.map((g) => {
    flat(g, 'globalNormClip', 'every gradient');
    return sumSquaresChunks(g.size);
  });
  const total = sizes.reduce((a, b) => a + b, 0);
  return tf.tidy(() => {
    let acc: tf.Tensor = tf.zeros([Math.max(1, total)]);
    let offset = 0;
    grads.forEach((g, i) => {
      const next = tf.engine().runKernel(OptimKernelNames.SumSquares, { x: g, acc }, {
        offset,
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
      acc = next;
      offset += sizes[i];
    });
    return tf.engine().runKernel(OptimKernelNames.ClipScale, { acc }, {
      maxNorm,
    } as unknown as tf.NamedAttrMap) as tf.Tensor1D;
  });
}

/**
 * One AdamW step of one parameter, in place: `w`, `m` and `v` (same shape, float32) are updated on
 * the device; `g` is scaled by clip[1] first (clip from globalNormClip, or [·, 1]). `sched`: a
 * device tensor holding adamwSchedule(…) that replaces attrs' lr, weightDecay and step.
 */
export function adamwUpdate(
  w: tf.Tensor,
  g: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  clip: tf.Tensor1D,
  attrs: AdamWAttrs,
  sched?: tf.Tensor1D,
): void {
  for (const [t, role] of [
    [g, 'g'],
    [m, 'm'],
    [v, 'v'],
  ] as const) {
    flat(t, 'adamwUpdate', role);
    if (t.size !== w.size)
      throw new ShapeError(`adamwUpdate: ${role} [${t.shape}] does not match w [${w.shape}]`);
  }
  flat(w, 'adamwUpdate', 'w');
  if (clip.size !== 2) throw new ShapeError(`adamwUpdate: clip must be [2], got [${clip.shape}]`);
  if (sched && (sched.size !== 4 || sched.dtype !== 'float32'))
    throw new ShapeError(
      `adamwUpdate: sched must be [4] float32, got [${sched.shape}] ${sched.dtype}`,
    );
  if (!(Number.isInteger(attrs.step) && attrs.step >= 1))
    throw new InvalidArgumentError(`adamwUpdate: step must be an integer ≥ 1, got ${attrs.step}`);
  const out = tf.tidy(
    () =>
      tf
        .engine()
        .runKernel(
          OptimKernelNames.AdamW,
          sched ? { w, g, m, v, clip, sched } : { w, g, m, v, clip },
          attrs as unknown as tf.NamedAttrMap,
        ) as tf.Tensor,
  );
  out.dispose();
}

/** Writes `src`'s values into `dst`'s own data on the device (same size, float32). */
export function copyInto(src: tf.Tensor, dst: tf.Tensor): void {
  flat(src, 'copyInto', 'src');
  flat(dst, 'copyInto', 'dst');
  if (src.size !== dst.size)
    throw new ShapeError(`copyInto: src [${src.shape}] and dst [${dst.shape}] differ in size`);
  const out = tf.engine().runKernel(OptimKernelNames.CopyInto, { src, dst }) as tf.Tensor;
  out.dispose();
}

/** Plain typed-array references of the optimizer kernels (float64 sums). */
export const optimReference = {
  sumSquares(x: Float32Array, acc: Float32Array, offset: number): Float32Array {
    const out = Float32Array.from(acc);
    const chunks = sumSquaresChunks(x.length);
    const c = Math.ceil(x.length / chunks);
    for (let j = 0; j < chunks; j++) {
      let s = 0;
      for (let i = j * c; i < Math.min(x.length, (j + 1) * c); i++) s += x[i] * x[i];
      out[offset + j] = s;
    }
    return out;
  },
  clipScale(acc: Float32Array, maxNorm: number): Float32Array {
    let s = 0;
    for (const a of acc) s += a;
    const norm = Math.sqrt(s);
    const scale = maxNorm > 0 && norm > maxNorm ? maxNorm / norm : Number.isNaN(norm) ? norm : 1;
    return Float32Array.from([norm, scale]);
  },
  /** `sched` (adamwSchedule's layout) replaces a's lr, weightDecay and step, as the kernel's input. */
  adamw(
    w: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    scale: number,
    a: AdamWAttrs,
    sched?: ArrayLike<number>,
  ): { w: Float32Array; m: Float32Array; v: Float32Array } {
    // float64 on the attrs path (adamwSchedule rounds to float32, as the kernels read it)
    const [lr, decay, c1, c2] = sched ? Array.from(sched) : adamwStepValues(a);
    const W = new Float32Array(w.length);
    const M = new Float32Array(w.length);
    const V = new Float32Array(w.length);
    for (let i = 0; i < w.length; i++) {
      const gi = g[i] * scale;
      M[i] = a.beta1 * m[i] + (1 - a.beta1) * gi;
      V[i] = a.beta2 * v[i] + (1 - a.beta2) * gi * gi;
      const update = M[i] / c1 / (Math.sqrt(V[i] / c2) + a.eps);
      W[i] = w[i] * decay - lr * update;
    }
    return { w: W, m: M, v: V };
  },
};
