import { type HalfDtype, InvalidArgumentError, assertIntInRange } from '@edkm/core';

/**
 * Per-tensor DKM settings, named after coremltools' palettizer options where they overlap.
 */
export interface DkmConfig {
  /** Index bits: K = 2^bits centroids (1..8). */
  bits: number;
  /** Dimension of each clustered vector (1..8): 1 clusters scalars, d > 1 clusters d consecutive weights of a row. */
  clusterDim: number;
  /**
   * Softmax temperature τ of A = softmax(−‖w − c‖² / τ), fixed per group at the first prepare:
   * 'variance': tauScale × the variance of the (rounded, normalised) weights, the PyTorch DKM
   * recipe's rule (τ = 0.05·var(W)); 'auto': tauScale × the mean squared distance of a weight to
   * its nearest initial centroid; a number: that τ.
   */
  tau: number | 'auto' | 'variance';
  /** Multiplier of a data-driven temperature; undefined takes the rule's own (variance 0.05, auto 1). */
  tauScale?: number;
  /**
   * The gradient each weight receives. 'code': every weight that shares a 16-bit code gets the
   * mean of their per-weight DKM gradients — uniquified DKM's straight-through gradient (the
   * paper's and the PyTorch reference's): a code's weights move together and stay clustered.
   * 'weight': plain DKM's own per-weight gradient.
   */
  gradient: 'code' | 'weight';
  /** Optional schedule: τ at a training step (overrides `tau` when set). */
  tauSchedule?: (step: number) => number;
  /** Most centroid iterations per forward. */
  maxIters: number;
  /** Stop iterating once no centroid coordinate moves more than this. */
  epsilon: number;
  /** Initial centroids: k-means++ on a sample of the distinct values, or quantiles. */
  init: 'kmeans++' | 'quantiles';
  /** Seed of the k-means++ sampling. */
  seed: number;
  /** Normalise each output row by its max |w| before clustering and scale back after. */
  perChannelScale: boolean;
  /** One LUT per group of this many output rows (0: one LUT for the whole tensor). */
  groupSize: number;
  /** The 16-bit format the weights are clustered in (and uniquified over). */
  weightDtype: HalfDtype;
  /** 'plain': direct N×K maps (the reference); 'edkm': uniquified U×K tables. */
  mode: 'plain' | 'edkm';
  /** Reuse the previous step's centroids as the initial ones (after the first prepare). */
  warmStart: boolean;
}

export const defaultDkmConfig: DkmConfig = {
  bits: 4,
  clusterDim: 1,
  tau: 'variance',
  tauScale: undefined,
  gradient: 'code',
  maxIters: 3,
  epsilon: 1e-6,
  init: 'kmeans++',
  seed: 0,
  perChannelScale: false,
  groupSize: 0,
  weightDtype: 'bf16',
  mode: 'edkm',
  warmStart: true,
};

/** The multiplier of a data-driven temperature rule when tauScale is not given. */
export const defaultTauScale = { variance: 0.05, auto: 1 } as const;

/** Fills defaults and validates every field with a clear message. */
export function resolveDkmConfig(config: Partial<DkmConfig> = {}): DkmConfig {
  for (const key of Object.keys(config)) {
    if (!(key in defaultDkmConfig) && key !== 'tauSchedule') {
      throw new InvalidArgumentError(
        `unknown DKM option '${key}' (known: ${Object.keys(defaultDkmConfig).join(', ')}, tauSchedule)`,
      );
    }
  }
  const c: DkmConfig = { ...defaultDkmConfig, ...config };
  assertIntInRange('bits', c.bits, 1, 8);
  assertIntInRange('clusterDim', c.clusterDim, 1, 8);
  assertIntInRange('maxIters', c.maxIters, 1, 1000);
  assertIntInRange('groupSize', c.groupSize, 0, Number.MAX_SAFE_INTEGER);
  if (
    c.tau !== 'auto' &&
    c.tau !== 'variance' &&
    !(typeof c.tau === 'number' && c.tau > 0 && Number.isFinite(c.tau))
  ) {
    throw new InvalidArgumentError(
      `tau must be a positive number, 'variance' or 'auto', got ${String(c.tau)}`,
    );
  }
  if (c.tauScale !== undefined && !(c.tauScale > 0 && Number.isFinite(c.tauScale)))
    throw new InvalidArgumentError(`tauScale must be positive, got ${c.tauScale}`);
  if (c.gradient !== 'code' && c.gradient !== 'weight')
    throw new InvalidArgumentError(`gradient must be 'code' or 'weight', got '${c.gradient}'`);
  if (!(c.epsilon >= 0)) throw new InvalidArgumentError(`epsilon must be >= 0, got ${c.epsilon}`);
  if (c.init !== 'kmeans++' && c.init !== 'quantiles')
    throw new InvalidArgumentError(`init must be 'kmeans++' or 'quantiles', got '${c.init}'`);
  if (c.weightDtype !== 'bf16' && c.weightDtype !== 'fp16')
    throw new InvalidArgumentError(`weightDtype must be 'bf16' or 'fp16', got '${c.weightDtype}'`);
  if (c.mode !== 'plain' && c.mode !== 'edkm')
    throw new InvalidArgumentError(`mode must be 'plain' or 'edkm', got '${c.mode}'`);
  return c;
}
