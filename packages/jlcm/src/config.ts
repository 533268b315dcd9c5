import { InvalidArgumentError, assertIntInRange } from '@edkm/core';

/** How neurons (rows of a [out, in] weight) are grouped into codebooks. */
export type JlcmGrouping = 'profile' | 'spread' | 'none';

/** Per-tensor JLCM settings. */
export interface JlcmConfig {
  /** Index bits: K = 2^bits entries per codebook (1..8). */
  bits: number;
  /** Codebooks per tensor: each serves one group of similarly distributed rows (1..256). */
  codebooks: number;
  /** Dimension of each codeword (1..8): d consecutive weights of a row share one index. */
  clusterDim: number;
  /**
   * 'profile': k-means over the rows' sorted-quantile profiles (groups of unequal sizes);
   * 'spread': rows sorted by their (normalised) standard deviation, cut into equal groups;
   * 'none': rows kept in order, cut into equal contiguous groups (no permutation stored).
   */
  grouping: JlcmGrouping;
  /** A trainable scale per row (output channel), multiplying its codebook's entries. */
  perChannelScale: boolean;
  /**
   * Temperature τ of the soft mapping A = softmax(−‖w/s − c‖² / τ) that the mapping's gradient
   * goes through (in codebook units: x = w/s). 'auto': tauScale × the mean squared distance of x
   * to its nearest codeword, per codebook, fixed at the first prepare.
   */
  tau: number | 'auto';
  /** Multiplier of the automatic temperature (ignored for a numeric tau). */
  tauScale: number;
  /** Alternating-minimisation rounds of the initial fit (assignment, codebooks, scales). */
  initIters: number;
  /** Initial codewords of that fit: k-means++ or quantiles (as in @edkm/dkm). */
  init: 'kmeans++' | 'quantiles';
  /** Seed of every random choice (k-means++ of codewords and of row groups). */
  seed: number;
}

export const defaultJlcmConfig: JlcmConfig = {
  bits: 4,
  codebooks: 4,
  clusterDim: 1,
  grouping: 'profile',
  perChannelScale: true,
  tau: 'auto',
  tauScale: 1,
  initIters: 15,
  init: 'kmeans++',
  seed: 0,
};

const GROUPINGS: JlcmGrouping[] = ['profile', 'spread', 'none'];

/** Fills defaults and validates every field; an InvalidArgumentError names the bad option. */
export function resolveJlcmConfig(config: Partial<JlcmConfig> = {}): JlcmConfig {
  if (typeof config !== 'object' || config === null)
    throw new InvalidArgumentError(`a JLCM config must be an object, got ${String(config)}`);
  for (const key of Object.keys(config)) {
    if (!(key in defaultJlcmConfig))
      throw new InvalidArgumentError(
        `unknown JLCM option '${key}' (known: ${Object.keys(defaultJlcmConfig).join(', ')})`,
      );
  }
  const c: JlcmConfig = { ...defaultJlcmConfig, ...config };
  assertIntInRange('bits', c.bits, 1, 8);
  assertIntInRange('codebooks', c.codebooks, 1, 256);
  assertIntInRange('clusterDim', c.clusterDim, 1, 8);
  assertIntInRange('initIters', c.initIters, 0, 1000);
  assertIntInRange('seed', c.seed, 0, 2 ** 32 - 1);
  if (!GROUPINGS.includes(c.grouping))
    throw new InvalidArgumentError(
      `grouping must be one of ${GROUPINGS.map((g) => `'${g}'`).join(', ')}, got '${String(c.grouping)}'`,
    );
  if (typeof c.perChannelScale !== 'boolean')
    throw new InvalidArgumentError(`perChannelScale must be a boolean, got ${c.perChannelScale}`);
  if (c.tau !== 'auto' && !(typeof c.tau === 'number' && c.tau > 0 && Number.isFinite(c.tau)))
    throw new InvalidArgumentError(`tau must be a positive number or 'auto', got ${String(c.tau)}`);
  if (!(typeof c.tauScale === 'number' && c.tauScale > 0 && Number.isFinite(c.tauScale)))
    throw new InvalidArgumentError(`tauScale must be a positive number, got ${c.tauScale}`);
  if (c.init !== 'kmeans++' && c.init !== 'quantiles')
    throw new InvalidArgumentError(`init must be 'kmeans++' or 'quantiles', got '${c.init}'`);
  return c;
}
