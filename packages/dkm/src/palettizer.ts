import { InvalidArgumentError, type tf } from '@edkm/core';
import { type DkmConfig, resolveDkmConfig } from './config';
import { DkmTensor, type Palettized } from './layer';

/**
 * One declarative config for a whole model, in the style of coremltools' OptimizationConfig:
 * `global` applies to every candidate weight; `byName` overrides it per weight name, by exact
 * name or by regular expression written as "re:<pattern>"; `null` leaves a weight unclustered.
 * The first matching `byName` entry wins (exact names before patterns).
 */
export interface PalettizerConfig {
  global?: Partial<DkmConfig> | null;
  byName?: Record<string, Partial<DkmConfig> | null>;
}

/** Validates a config (e.g. read from palettize.json) and returns it typed. */
export function parsePalettizerConfig(
  json: unknown,
  source = 'palettizer config',
): PalettizerConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InvalidArgumentError(`${source}: expected an object with "global" and/or "byName"`);
  }
  const { global, byName, ...rest } = json as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length)
    throw new InvalidArgumentError(
      `${source}: unknown key(s) ${extra.join(', ')} (expected "global", "byName")`,
    );
  const check = (where: string, value: unknown) => {
    if (value === null) return;
    try {
      resolveDkmConfig(value as Partial<DkmConfig>);
    } catch (err) {
      throw new InvalidArgumentError(`${source}: ${where}: ${(err as Error).message}`);
    }
  };
  if (global !== undefined) check('global', global);
  if (byName !== undefined) {
    if (typeof byName !== 'object' || byName === null)
      throw new InvalidArgumentError(`${source}: "byName" must be an object`);
    for (const [pattern, value] of Object.entries(byName)) {
      if (pattern.startsWith('re:')) {
        try {
          new RegExp(pattern.slice(3));
        } catch {
          throw new InvalidArgumentError(
            `${source}: byName "${pattern}" is not a valid regular expression`,
          );
        }
      }
      check(`byName "${pattern}"`, value);
    }
  }
  return json as PalettizerConfig;
}

/** The DKM settings for one weight name, or null when it stays unclustered. */
export function configFor(config: PalettizerConfig, name: string): Partial<DkmConfig> | null {
  const byName = config.byName ?? {};
  if (name in byName) return byName[name] === null ? null : { ...config.global, ...byName[name] };
  for (const [pattern, value] of Object.entries(byName)) {
    if (pattern.startsWith('re:') && new RegExp(pattern.slice(3)).test(name)) {
      return value === null ? null : { ...config.global, ...value };
    }
  }
  return config.global === undefined || config.global === null ? null : { ...config.global };
}

/**
 * DKM over many named weights (a model's linear layers). `prepare()` after every optimizer
 * step; `transform` plugs into a model's weight hook inside the gradient tape.
 */
export class Palettizer {
  readonly layers = new Map<string, DkmTensor>();

  constructor(shapes: Map<string, [number, number]>, config: PalettizerConfig) {
    for (const [name, shape] of shapes) {
      const layerConfig = configFor(config, name);
      if (layerConfig) this.layers.set(name, new DkmTensor(shape, layerConfig));
    }
  }

  /** Prepares every clustered weight (reads them from the backend, asynchronously). */
  async prepare(weights: Map<string, tf.Tensor> | ((name: string) => tf.Tensor)): Promise<void> {
    const get = typeof weights === 'function' ? weights : (n: string) => weights.get(n);
    for (const [name, dkm] of this.layers) {
      const w = get(name);
      if (!w) throw new InvalidArgumentError(`Palettizer.prepare: no weight named '${name}'`);
      await dkm.prepare(w);
    }
  }

  /** (name, weight) → soft-clustered weight; unclustered names pass through. */
  readonly transform = (name: string, weight: tf.Tensor2D): tf.Tensor2D => {
    const dkm = this.layers.get(name);
    return dkm ? dkm.apply(weight) : weight;
  };

  /** Hard-assigned LUTs and indices of every clustered weight. */
  async export(
    weights: Map<string, tf.Tensor> | ((name: string) => tf.Tensor),
  ): Promise<Map<string, Palettized>> {
    const get = typeof weights === 'function' ? weights : (n: string) => weights.get(n);
    const out = new Map<string, Palettized>();
    for (const [name, dkm] of this.layers) out.set(name, await dkm.palettize(get(name)!));
    return out;
  }

  dispose(): void {
    for (const dkm of this.layers.values()) dkm.dispose();
    this.layers.clear();
  }
}
