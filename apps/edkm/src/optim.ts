import { InvalidArgumentError, tf } from '@edkm/core';

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
    throw new InvalidArgumentError(
      `the gradient norm is ${norm}: training diverged (lower the learning rate)`,
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

  apply(variables: Map<string, tf.Variable>, grads: Record<string, tf.Tensor>, lr: number): void {
    const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0 } = this.opts;
    this.step++;
    const c1 = 1 - beta1 ** this.step;
    const c2 = 1 - beta2 ** this.step;
    for (const [name, g] of Object.entries(grads)) {
      const w = variables.get(name);
      if (!w) continue;
      if (!this.m.has(name)) {
        this.m.set(name, tf.variable(tf.zerosLike(w), false));
        this.v.set(name, tf.variable(tf.zerosLike(w), false));
      }
      const m = this.m.get(name)!;
      const v = this.v.get(name)!;
      tf.tidy(() => {
        m.assign(m.mul(beta1).add(g.mul(1 - beta1)));
        v.assign(v.mul(beta2).add(g.square().mul(1 - beta2)));
        const update = m.div(c1).div(v.div(c2).sqrt().add(eps));
        const decayed = weightDecay > 0 ? w.mul(1 - lr * weightDecay) : w;
        w.assign(decayed.sub(update.mul(lr)));
      });
    }
  }

  async getState(): Promise<AdamWState> {
    const moments: AdamWState['moments'] = {};
    for (const [name, m] of this.m) {
      moments[name] = {
        m: (await m.data()) as Float32Array,
        v: (await this.v.get(name)!.data()) as Float32Array,
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
      this.m.set(name, tf.variable(tf.tensor(m, shape), false));
      this.v.set(name, tf.variable(tf.tensor(v, shape), false));
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}
