import * as tf from '@tensorflow/tfjs-core';
import { BackendError, InvalidArgumentError } from './errors';

/** One custom kernel implementation for one tfjs backend (registered through tfjs's registry). */
export interface PluginKernel {
  kernelName: string;
  kernelFunc: tf.KernelFunc;
}

/**
 * A backend plugin: a package that makes a tfjs backend ready and registers the project's custom
 * kernels for it. It registers itself with one call to `registerPlugin` when imported.
 */
export interface BackendPlugin {
  /** Plugin name, used by `useBackend(name)`. */
  name: string;
  /** Name of the tfjs backend it drives ('cpu', 'webgpu', ...). */
  tfjsBackend: string;
  /** Higher wins for `useBackend('auto')`. */
  priority: number;
  /**
   * Makes the tfjs backend available (registers it with tfjs if needed). Throws, or returns
   * false, when it cannot run here. Called at most once per successful plugin.
   */
  init: () => Promise<boolean | undefined> | boolean | undefined;
  /** The custom kernels this plugin implements. */
  kernels: PluginKernel[];
  /** Human-readable description of the device once initialised (adapter name, ...). */
  describe?: () => string;
  /**
   * True once initialised on a software emulation of its device (a GPU backend on a CPU
   * rasteriser such as lavapipe): 'auto' then prefers the other plugins and takes this one only
   * when none of them starts. Naming it explicitly always uses it.
   */
  isSoftware?: () => boolean;
  /**
   * Submits the device work queued so far, so that buffers disposed meanwhile return to the pool
   * now (WebGPU defers their release to its next submit). See flushBackend().
   */
  flush?: () => void;
  /**
   * Moves a tensor's values onto the device now and drops the host copy (WebGPU otherwise keeps
   * the values of tf.tensor() in host memory until a kernel first reads them). See makeResident().
   */
  upload?: (t: tf.Tensor) => void;
  /** Records `fn`'s device work as a replayable graph. See captureGraph(). */
  capture?: (fn: () => void) => DeviceGraph | undefined;
}

/** DeviceGraph.profile's result: total GPU time and time per kernel name. */
export interface GraphProfile {
  dispatches: number;
  gpuMicroseconds: number;
  byKernel: { name: string; dispatches: number; microseconds: number }[];
}

/** What one replay of a DeviceGraph does besides its recorded dispatches. */
export interface GraphRun {
  /** Host values written into tensors first (int32/float32, at most the tensor's size). */
  writes?: [tf.Tensor, Int32Array | Float32Array][];
  /** Then device copies src → dst (same size), still before the dispatches. */
  copies?: [tf.Tensor, tf.Tensor][];
  /**
   * Device copies src → dst after the dispatches, in the same submission: results kept apart
   * from the graph's buffers, which the next replay overwrites (a training step's loss).
   */
  after?: [tf.Tensor, tf.Tensor][];
}

/**
 * A step of device work recorded once by captureGraph and run again with no host work per op: the
 * same kernels on the same buffers, in queue order after everything already queued.
 */
export interface DeviceGraph {
  /** Dispatches recorded. */
  readonly dispatches: number;
  /** Replays the step: `writes`, `copies`, the recorded dispatches, `after` (one submission). */
  run(opts?: GraphRun): void;
  /**
   * Replays the graph once with each dispatch timed on the device (timestamp queries, one pass per
   * dispatch; undefined where the device has none): GPU microseconds per kernel name, most first.
   * The replay is a real one (its writes land): run it where a step may run.
   */
  profile?(opts?: GraphRun): Promise<GraphProfile | undefined>;
  /** A tensor that the graph writes, read from the device (not from a host copy of an earlier run). */
  read(t: tf.Tensor): Promise<tf.backend_util.TypedArray>;
  /** Releases the intermediates and buffers the graph keeps alive. */
  dispose(): void;
}

/**
 * Runs `fn` once (its results are real) while the active backend records its device work, and
 * returns that work as a DeviceGraph to replay — CUDA graphs' idea on WebGPU: a decode step of
 * hundreds of small dispatches then costs one submission instead of hundreds of trips through
 * tfjs. Everything `fn` touches keeps its buffer for the graph's life, so a replay rewrites the
 * same tensors. For a replay to be right, what changes between runs must live in tensors the
 * caller rewrites through `GraphRun` (a position, the previous token): values baked into
 * uniforms, shapes and host constants made inside `fn` are replayed as recorded. Make the
 * tensors you rewrite device-resident first (makeResident): tfjs-webgpu runs an op whose inputs
 * all still hold host values on the host, and a replay repeats that op's recorded result. Returns
 * undefined where the backend cannot record (the cpu and wasm backends: their host work is the
 * computation) or where `fn` did work outside the recordable path; `fn`'s results stand either way.
 */
export function captureGraph(fn: () => void): DeviceGraph | undefined {
  const record = activeCapture();
  if (!record) {
    fn();
    return undefined;
  }
  capturing++;
  try {
    return record(fn);
  } finally {
    capturing--;
  }
}

/** The active backend's plugin's recorder, if it has one. */
function activeCapture(): BackendPlugin['capture'] {
  const name = tf.getBackend();
  for (const plugin of plugins.values())
    if (plugin.tfjsBackend === name && plugin.capture) return plugin.capture;
  return undefined;
}

/** Whether the active backend can record device graphs (captureGraph returns one). */
export function canCaptureGraph(): boolean {
  return activeCapture() !== undefined;
}

let capturing = 0;
/**
 * Whether a captureGraph is recording now. While it records, every tensor bound by a kernel holds
 * one more reference (the graph keeps its buffer): a reference count read then is inflated.
 */
export function isCapturing(): boolean {
  return capturing > 0;
}

/**
 * Lets the active backend free what was disposed while its work was still queued. Call it after
 * disposing a large temporary that the next allocation could reuse (DKM's fused linear frees W̃
 * before it allocates dW̃); a no-op on backends that free at once.
 */
export function flushBackend(): void {
  const name = tf.getBackend();
  for (const plugin of plugins.values()) if (plugin.tfjsBackend === name) plugin.flush?.();
}

export interface BackendSelection {
  plugin: string;
  tfjsBackend: string;
  description: string;
  /** Plugins tried before this one and why each failed (for 'auto'). */
  skipped: { plugin: string; reason: string }[];
}

/**
 * Makes a freshly created tensor live on the device only: a loader that streams a checkpoint tensor
 * by tensor calls it after each one so that host memory stays near the largest tensor. A no-op on
 * backends whose tensors live in host memory anyway (cpu).
 */
export function makeResident(t: tf.Tensor): void {
  const name = tf.getBackend();
  for (const plugin of plugins.values()) if (plugin.tfjsBackend === name) plugin.upload?.(t);
}

const plugins = new Map<string, BackendPlugin>();
const ready = new Map<string, Promise<void>>();

export function registerPlugin(plugin: BackendPlugin): void {
  if (!plugin.name || !plugin.tfjsBackend) {
    throw new InvalidArgumentError('a backend plugin needs a name and a tfjsBackend');
  }
  plugins.set(plugin.name, plugin);
  ready.delete(plugin.name);
  for (const kernel of plugin.kernels) {
    // tfjs warns and keeps the first registration on duplicates; a re-registered plugin replaces it
    if (tf.getKernel(kernel.kernelName, plugin.tfjsBackend))
      tf.unregisterKernel(kernel.kernelName, plugin.tfjsBackend);
    tf.registerKernel({
      kernelName: kernel.kernelName,
      backendName: plugin.tfjsBackend,
      kernelFunc: kernel.kernelFunc,
    });
  }
}

export function listPlugins(): BackendPlugin[] {
  return [...plugins.values()].sort((a, b) => b.priority - a.priority);
}

export function getPlugin(name: string): BackendPlugin | undefined {
  return plugins.get(name);
}

async function initPlugin(plugin: BackendPlugin): Promise<void> {
  let pending = ready.get(plugin.name);
  if (!pending) {
    pending = (async () => {
      const ok = await plugin.init();
      if (ok === false)
        throw new BackendError(`backend plugin '${plugin.name}' is not available on this machine`);
    })();
    ready.set(plugin.name, pending);
    pending.catch(() => ready.delete(plugin.name));
  }
  await pending;
}

/**
 * Selects the backend that every tfjs op runs on from now on. 'auto' takes the highest-priority
 * registered plugin whose init succeeds and says which it took (and why others were skipped).
 */
export async function useBackend(name = 'auto'): Promise<BackendSelection> {
  const skipped: { plugin: string; reason: string }[] = [];
  const candidates = name === 'auto' ? listPlugins() : [plugins.get(name)];
  if (name !== 'auto' && !candidates[0]) {
    const known = listPlugins().map((p) => p.name);
    throw new BackendError(
      `no backend plugin named '${name}' is registered (registered: ${known.join(', ') || 'none'}); ` +
        `import its package first, e.g. import '@edkm/backend-${name}'`,
    );
  }
  const software: BackendPlugin[] = [];
  const select = async (plugin: BackendPlugin): Promise<BackendSelection> => {
    const ok = await tf.setBackend(plugin.tfjsBackend);
    if (!ok) throw new BackendError(`tfjs could not initialise backend '${plugin.tfjsBackend}'`);
    await tf.ready();
    return {
      plugin: plugin.name,
      tfjsBackend: plugin.tfjsBackend,
      description: plugin.describe?.() ?? plugin.tfjsBackend,
      skipped,
    };
  };
  for (const plugin of candidates) {
    if (!plugin) continue;
    try {
      await initPlugin(plugin);
      if (name === 'auto' && plugin.isSoftware?.()) {
        software.push(plugin);
        skipped.push({
          plugin: plugin.name,
          reason: `${plugin.describe?.() ?? plugin.name} emulates its device in software (select it by name to use it)`,
        });
        continue;
      }
      return await select(plugin);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      if (name !== 'auto') {
        throw new BackendError(
          `backend '${name}' failed to start: ${reason}`,
          'BACKEND_UNAVAILABLE',
          { cause: err },
        );
      }
      skipped.push({ plugin: plugin.name, reason });
    }
  }
  if (software.length) return select(software[0]);
  throw new BackendError(
    `no backend plugin could start (${skipped.map((s) => `${s.plugin}: ${s.reason}`).join('; ') || 'none registered'})`,
  );
}

/** True when `kernelName` has an implementation for the active backend. */
export function hasKernel(kernelName: string, backendName: string = tf.getBackend()): boolean {
  return tf.getKernel(kernelName, backendName) !== undefined;
}
