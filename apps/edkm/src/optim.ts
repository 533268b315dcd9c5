import {
  type AdamWAttrs,
  InvalidArgumentError,
  NonFiniteError,
  adamwSchedule,
  adamwUpdate,
  globalNormClip,
  isCapturing,
  tf,
} from '@edkm/core';

/** Linear warm-up then cosine decay to `minRatio` × lr. */
export function learningRate(
  step: number,
  opts: { lr: number; warmupSteps: number; totalSteps: number; minRatio?: number },
): number {
  const { lr, warmupSteps, totalSteps, minRatio = 0.1 } = opts;
  if (step < warmupSteps) return (lr * (step + 1)) / warmupSteps;
  const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
  return lr * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** Scales gradients so that their global L2 norm is at most `maxNorm`; returns the norm before. */
export async function clipByGlobalNorm(
  grads: Record<string, tf.Tensor>,
  maxNorm: number,
): Promise<number> {
  // summed one by one: tf.addN of many tensors exceeds WebGPU's storage-buffer limit per shader
  const sq = tf.tidy(() =>
    Object.values(grads).reduce<tf.Tensor>((acc, g) => acc.add(g.square().sum()), tf.scalar(0)),
  );
  const norm = Math.sqrt((await sq.data())[0]);
  sq.dispose();
  if (!Number.isFinite(norm))
    throw new NonFiniteError(
      `the gradient norm is ${norm}: training diverged (lower the learning rate, check the data)`,
    );
  if (maxNorm > 0 && norm > maxNorm) {
    const scale = maxNorm / norm;
    for (const k of Object.keys(grads)) {
      const scaled = grads[k].mul(scale);
      grads[k].dispose();
      grads[k] = scaled;
    }
  }
  return norm;
}

/**
 * The global gradient norm and its clip factor as a device tensor [norm, scale] (nothing read
 * back): pass it to AdamW.apply, read it when the loss is read.
 */
export function globalNormAndClip(grads: Record<string, tf.Tensor>, maxNorm: number): tf.Tensor1D {
  return globalNormClip(Object.values(grads), maxNorm);
}

/** A variable's data is updated in place by AdamW: give it a buffer of its own if it shares one. */
function ownData(w: tf.Variable): void {
  // a step being recorded holds a reference to every tensor it bound (the count says nothing
  // then); the step before a recording (TrainStep's warm-up) gave each variable its own buffer
  if (isCapturing()) return;
  const backend = tf.engine().backend as unknown as { refCount(id: object): number };
  if (backend.refCount(w.dataId) <= 1) return;
  const copy = tf.tidy(() => w.add(tf.scalar(0)));
  w.assign(copy);
  copy.dispose();
}

export interface AdamWState {
  step: number;
  moments: Record<string, { m: Float32Array; v: Float32Array }>;
}

/**
 * AdamW (decoupled weight decay) over named variables, with a state that can be saved and
 * restored exactly (for checkpoints and resume).
 */
export class AdamW {
  private step = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(
    private readonly opts: {
      beta1?: number;
      beta2?: number;
      eps?: number;
      weightDecay?: number;
    } = {},
  ) {}

  /**
   * One step over every named gradient: one fused kernel per parameter that updates the weight and
   * both moments in place, with the gradient scaled by clip[1] (from globalNormAndClip; none: no
   * clipping).
   */
  apply(
    variables: Map<string, tf.Variable>,
    grads: Record<string, tf.Tensor>,
    lr: number,
    clip?: tf.Tensor1D,
    sched?: tf.Tensor1D,
  ): void {
    this.beginStep();
    this.update(variables, grads, lr, clip, sched);
  }

  /** Starts an optimizer step whose variables update() then updates group by group. */
  beginStep(): void {
    this.step++;
  }

  /**
   * The device schedule of a step at learning rate `lr` (core's adamwSchedule: lr, decay, bias
   * corrections) for the step beginStep() started, or `ahead` steps later.
   */
  schedule(lr: number, ahead = 0): Float32Array {
    return adamwSchedule(this.attrs(lr, this.step + ahead));
  }

  /** The kernel's attrs at learning rate `lr` and step `step` (the options' defaults filled). */
  private attrs(lr: number, step: number): AdamWAttrs {
    const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0 } = this.opts;
    return { lr, beta1, beta2, eps, weightDecay, step };
  }

  /**
   * Updates the named variables with their gradients, at the step beginStep() started. `sched`:
   * a device tensor holding schedule(lr), read by the kernels instead of lr and the step (a
   * recorded step replays with it rewritten).
   */
  update(
    variables: Map<string, tf.Variable>,
    grads: Record<string, tf.Tensor>,
    lr: number,
    clip?: tf.Tensor1D,
    sched?: tf.Tensor1D,
  ): void {
    const attrs = this.attrs(lr, this.step);
    const scale = clip ?? tf.tensor1d([0, 1]);
    for (const [name, g] of Object.entries(grads)) {
      const w = variables.get(name);
      if (!w) continue;
      if (!this.m.has(name)) {
        const zeros = () => {
          const z = tf.zerosLike(w);
          const variable = tf.variable(z, false);
          z.dispose();
          return variable;
        };
        this.m.set(name, zeros());
        this.v.set(name, zeros());
      }
      ownData(w);
      adamwUpdate(w, g, this.m.get(name)!, this.v.get(name)!, scale, attrs, sched);
    }
    if (!clip) scale.dispose();
  }

  async getState(): Promise<AdamWState> {
    const moments: AdamWState['moments'] = {};
    for (const [name, m] of this.m) {
      moments[name] = {
        // copies: the moments are updated in place by later steps
        m: Float32Array.from((await m.data()) as Float32Array),
        v: Float32Array.from((await this.v.get(name)!.data()) as Float32Array),
      };
    }
    return { step: this.step, moments };
  }

  setState(state: AdamWState, shapes: Map<string, number[]>): void {
    this.dispose();
    this.step = state.step;
    for (const [name, { m, v }] of Object.entries(state.moments)) {
      const shape = shapes.get(name);
      if (!shape)
        throw new InvalidArgumentError(`optimizer state names an unknown weight '${name}'`);
      for (const [map, values] of [
        [this.m, m],
        [this.v, v],
      ] as const) {
        const t = tf.tensor(Float32Array.from(values), shape);
        map.set(name, tf.variable(t, false));
        t.dispose();
      }
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}
