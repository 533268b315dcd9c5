import { InvalidArgumentError, StateError, breathe, tf } from '@edkm/core';
import { type DkmConfig, resolveDkmConfig } from './config';
import { type DkmRuntimeOptions, DkmTensor, type Palettized } from './layer';

/**
 * One palettized weight as the Palettizer drives it: `DkmTensor`, or a layer of another method
 * (e.g. `JlcmTensor` from @edkm/jlcm).
 */
export interface PalettizationLayer {
  readonly shape: [number, number];
  /** Reads the weight after every update of it (and of `variables()`). */
  prepare(w: tf.Tensor): Promise<void>;
  /** The palettized weight inside the gradient tape. */
  apply(w: tf.Tensor): tf.Tensor2D;
  /** x · apply(w)ᵀ, where the method can do it without keeping the palettized weight (DKM). */
  linear?(x: tf.Tensor2D, w: tf.Tensor): tf.Tensor2D;
  /** Hard-assigned LUTs and indices. */
  palettize(w: tf.Tensor): Promise<Palettized>;
  /** The method's own trainables (codebooks, scales) that the optimizer must update too; DKM has none. */
  variables?(): tf.Variable[];
  /** What the next prepare() depends on besides the weights (JSON-serialisable), for checkpoints. */
  getState?(): unknown;
  /** Resolves once what prepare() left on the device for getState has reached the host. */
  settled?(): Promise<void>;
  /** Restores getState()'s output on a layer of the same shape and config. */
  setState?(state: unknown): void;
  /** Whether prepareOnDevice() can run now (see DkmTensor). */
  canPrepareOnDevice?(): boolean;
  /** prepare() on the device alone, synchronously (a step that a device graph can record). */
  prepareOnDevice?(w: tf.Tensor): void;
  /** A recorded step that ran prepareOnDevice() was replayed (counters move on). */
  replayedPrepare?(): void;
  dispose(): void;
}

/**
 * The settings of one weight: DKM's options (the default; `method` may be left out) or the options
 * of a registered method, e.g. `{ method: 'jlcm', bits: 2, codebooks: 4 }` (validated at run time
 * by that method's resolver; @edkm/jlcm exports the typed form).
 */
export type LayerConfig =
  | (Partial<DkmConfig> & { method?: 'dkm' })
  | ({ method: string } & Record<string, unknown>);

/** How a method validates its options and creates the layer of one [rows, cols] weight. */
export interface PalettizationMethod<Options = unknown, Resolved = unknown> {
  /** Fills defaults and validates every option (an InvalidArgumentError names the bad one). */
  resolve(options: Options): Resolved;
  /** `runtime`: how eDKM holds its index lists (marshaling, sharding); methods may ignore it. */
  create(
    shape: [number, number],
    config: Resolved,
    runtime?: DkmRuntimeOptions,
  ): PalettizationLayer;
}

/** Packages that register a method when imported (for the error message when one is missing). */
const KNOWN_METHOD_PACKAGES: Record<string, string> = { jlcm: '@edkm/jlcm' };

const methods = new Map<string, PalettizationMethod<any, any>>([
  [
    'dkm',
    {
      resolve: ({ method: _, ...options }: Partial<DkmConfig> & { method?: 'dkm' }) =>
        resolveDkmConfig(options),
      create: (shape: [number, number], config: DkmConfig, runtime?: DkmRuntimeOptions) =>
        new DkmTensor(shape, config, runtime),
    },
  ],
]);

/**
 * Makes `method: name` usable in Palettizer configs (a method package calls this when imported;
 * registering a name again replaces it). DKM is built in.
 */
export function registerPalettizationMethod<Options extends { method?: string }, Resolved>(
  name: string,
  method: PalettizationMethod<Options, Resolved>,
): void {
  if (name === 'dkm') throw new InvalidArgumentError("the 'dkm' method is built in");
  methods.set(name, method);
}

/** The names of the registered methods ('dkm' first). */
export function palettizationMethods(): string[] {
  return [...methods.keys()];
}

function methodOf(config: LayerConfig): { name: string; method: PalettizationMethod } {
  const name = config.method ?? 'dkm';
  if (typeof name !== 'string')
    throw new InvalidArgumentError(`method must be a string, got ${JSON.stringify(name)}`);
  const method = methods.get(name);
  if (!method) {
    const pkg = KNOWN_METHOD_PACKAGES[name];
    throw new InvalidArgumentError(
      pkg
        ? `palettization method '${name}' is not registered: import '${pkg}' (it registers itself when imported)`
        : `unknown palettization method '${name}' (registered: ${[...methods.keys()].join(', ')})`,
    );
  }
  return { name, method: method as PalettizationMethod };
}

/** Validates one weight's settings through its method's resolver; returns the method's resolved config. */
export function resolveLayerConfig(config: LayerConfig): unknown {
  return methodOf(config).method.resolve(config);
}

/**
 * One declarative config for a whole model, in the style of coremltools' OptimizationConfig:
 * `global` applies to every candidate weight; `byName` overrides it per weight name, by exact
 * name or by regular expression written as "re:<pattern>"; `null` leaves a weight unclustered.
 * The first matching `byName` entry wins (exact names before patterns). An entry inherits
 * `global`'s options when both use the same `method` (default 'dkm'); an entry that names another
 * method starts from that method's defaults.
 */
export interface PalettizerConfig {
  global?: LayerConfig | null;
  byName?: Record<string, LayerConfig | null>;
}

function mergeLayerConfig(global: LayerConfig | null | undefined, entry: LayerConfig): LayerConfig {
  if (!global) return { ...entry };
  const globalMethod = global.method ?? 'dkm';
  const entryMethod = entry.method ?? globalMethod;
  return (entryMethod === globalMethod ? { ...global, ...entry } : { ...entry }) as LayerConfig;
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
  const isConfigObject = (value: unknown) =>
    typeof value === 'object' && value !== null && !Array.isArray(value);
  const check = (where: string, value: unknown, inherit: boolean) => {
    if (value === null) return;
    try {
      if (!isConfigObject(value))
        throw new InvalidArgumentError('expected an object of options or null');
      resolveLayerConfig(
        inherit
          ? mergeLayerConfig(global as LayerConfig | null | undefined, value as LayerConfig)
          : (value as LayerConfig),
      );
    } catch (err) {
      throw new InvalidArgumentError(`${source}: ${where}: ${(err as Error).message}`);
    }
  };
  if (global !== undefined) check('global', global, false);
  if (byName !== undefined) {
    if (!isConfigObject(byName))
      throw new InvalidArgumentError(`${source}: "byName" must be an object`);
    for (const [pattern, value] of Object.entries(byName as Record<string, unknown>)) {
      if (pattern.startsWith('re:')) {
        try {
          new RegExp(pattern.slice(3));
        } catch {
          throw new InvalidArgumentError(
            `${source}: byName "${pattern}" is not a valid regular expression`,
          );
        }
      }
      check(`byName "${pattern}"`, value, true);
    }
  }
  return json as PalettizerConfig;
}

/** The settings for one weight name, or null when it stays unclustered. */
export function configFor(config: PalettizerConfig, name: string): LayerConfig | null {
  const byName = config.byName ?? {};
  const entry = (value: LayerConfig | null) =>
    value === null ? null : mergeLayerConfig(config.global, value);
  if (name in byName) return entry(byName[name]);
  for (const [pattern, value] of Object.entries(byName)) {
    if (pattern.startsWith('re:') && new RegExp(pattern.slice(3)).test(name)) return entry(value);
  }
  return config.global === undefined || config.global === null ? null : { ...config.global };
}

/**
 * Palettization over many named weights (a model's linear layers), each by its configured method.
 * `prepare()` after every optimizer step; `transform` plugs into a model's weight hook inside the
 * gradient tape; `variables()` are the methods' own trainables, to optimise with the weights.
 */
export class Palettizer {
  /** `registerPalettizationMethod`, reachable from the package's entry point. */
  static readonly registerMethod = registerPalettizationMethod;
  /** The registered method names ('dkm' first). */
  static readonly methods = palettizationMethods;
  /** Validates one weight's settings through its method's resolver. */
  static readonly resolveLayerConfig = resolveLayerConfig;

  /** The layer of every clustered weight (a DkmTensor for method 'dkm'). */
  readonly layers = new Map<string, PalettizationLayer>();

  /** `runtime` applies to every DKM layer (eDKM's marshaling / sharding ablation switches). */
  constructor(
    shapes: Map<string, [number, number]>,
    config: PalettizerConfig,
    runtime: DkmRuntimeOptions = {},
  ) {
    for (const [name, shape] of shapes) {
      const layerConfig = configFor(config, name);
      if (!layerConfig) continue;
      const { method } = methodOf(layerConfig);
      this.layers.set(name, method.create(shape, method.resolve(layerConfig), runtime));
    }
  }

  /**
   * Prepares every clustered weight (reads them from the backend, asynchronously). Up to
   * `concurrency` layers are in flight at once, so that their device→host reads overlap (each
   * layer's result does not depend on the others or on the order).
   */
  async prepare(
    weights: Map<string, tf.Tensor> | ((name: string) => tf.Tensor),
    concurrency = 8,
  ): Promise<void> {
    const get = typeof weights === 'function' ? weights : (n: string) => weights.get(n);
    const queue = [...this.layers].map(([name, layer]) => {
      const w = get(name);
      if (!w) throw new InvalidArgumentError(`Palettizer.prepare: no weight named '${name}'`);
      return { layer, w };
    });
    let next = 0;
    const worker = async () => {
      while (next < queue.length) {
        const { layer, w } = queue[next++];
        await layer.prepare(w);
        await breathe(); // a long prepare on the cpu backend yields the event loop now and then
      }
    };
    await Promise.all(
      Array.from({ length: Math.max(1, Math.min(concurrency, queue.length)) }, worker),
    );
  }

  /** Resolves once every layer's last prepare() has reached the host (see DkmTensor.settled). */
  async settled(): Promise<void> {
    await Promise.all([...this.layers.values()].map((l) => l.settled?.()));
  }

  /** Whether every layer can prepare on the device alone now (see prepareOnDevice). */
  canPrepareOnDevice(): boolean {
    return [...this.layers.values()].every((l) => l.canPrepareOnDevice?.() ?? false);
  }

  /**
   * prepare() with nothing read back: every layer's tables computed on the device, synchronously,
   * so that a training step including it can be recorded (captureGraph) and replayed. Throws a
   * StateError unless canPrepareOnDevice(); after a replay, call replayedPrepare().
   */
  prepareOnDevice(weights: Map<string, tf.Tensor> | ((name: string) => tf.Tensor)): void {
    const get = typeof weights === 'function' ? weights : (n: string) => weights.get(n);
    if (!this.canPrepareOnDevice())
      throw new StateError(
        'Palettizer.prepareOnDevice: a layer cannot prepare on the device now (canPrepareOnDevice)',
      );
    for (const [name, layer] of this.layers) {
      const w = get(name);
      if (!w)
        throw new InvalidArgumentError(`Palettizer.prepareOnDevice: no weight named '${name}'`);
      layer.prepareOnDevice!(w);
    }
  }

  /** A recorded step that ran prepareOnDevice() was replayed: every layer's counters move on. */
  replayedPrepare(): void {
    for (const layer of this.layers.values()) layer.replayedPrepare?.();
  }

  /**
   * (name, x, weight) → x · W̃ᵀ inside the tape, for a model's linear hook: DKM layers use their
   * fused linear (W̃ is not kept for the backward pass); unclustered names are a plain matMul.
   */
  readonly linear = (name: string, x: tf.Tensor2D, weight: tf.Tensor2D): tf.Tensor2D => {
    const layer = this.layers.get(name);
    if (layer?.linear) return layer.linear(x, weight);
    return tf.tidy(() => tf.matMul(x, layer ? layer.apply(weight) : weight, false, true));
  };

  /** (name, weight) → palettized weight inside the tape; unclustered names pass through. */
  readonly transform = (name: string, weight: tf.Tensor2D): tf.Tensor2D => {
    const layer = this.layers.get(name);
    return layer ? layer.apply(weight) : weight;
  };

  /** Every layer's own trainables (codebooks, scales; none for DKM), to update with the weights. */
  variables(): tf.Variable[] {
    return [...this.layers.values()].flatMap((layer) => layer.variables?.() ?? []);
  }

  /** Hard-assigned LUTs and indices of every clustered weight. */
  async export(
    weights: Map<string, tf.Tensor> | ((name: string) => tf.Tensor),
  ): Promise<Map<string, Palettized>> {
    const get = typeof weights === 'function' ? weights : (n: string) => weights.get(n);
    const out = new Map<string, Palettized>();
    for (const [name, layer] of this.layers) {
      out.set(name, await layer.palettize(get(name)!));
      await breathe();
    }
    return out;
  }

  dispose(): void {
    for (const layer of this.layers.values()) layer.dispose();
    this.layers.clear();
  }
}
