import { InvalidArgumentError } from '@edkm/core';
import { BackendWasm, setThreadsCount, version_wasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * tfjs-backend-wasm's threaded SIMD build, loaded under Node.
 *
 * tfjs-backend-wasm 4.22 never loads it under Node (`WASM_HAS_MULTITHREAD_SUPPORT` is false when
 * `IS_NODE`: its loader hands Emscripten blob URLs, which Node's worker_threads cannot start). The
 * build itself supports Node: here its Emscripten factory (`wasm-out/`) is called directly with the
 * pthread worker script written to a file, and the module is handed to tfjs's own `BackendWasm`.
 * Two more things differ from a browser: the C++ side sizes its pool as
 * min(requested, logical cores / 2) (it assumes two hyper-threads per core; a 2-vCPU machine
 * would get 1), so the core count the module sees is the one asked for ×2; and the pool's workers
 * are unref'd, so that they do not keep the process alive.
 *
 * What runs threaded: XNNPACK's operators (every matrix product of the plugin's BatchMatMul,
 * tfjs's XNNPACK-backed element-wise and reduction kernels), split over output tiles, so each
 * output element is computed as in one thread (the same values). Everything in JavaScript (this
 * plugin's kernels over the heap, tfjs's JS kernels) runs on the calling thread.
 */

interface EmscriptenModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  PThread?: { runningWorkers: { unref(): void }[]; unusedWorkers: { unref(): void }[] };
  tfjs?: unknown;
}
type Factory = (config: Record<string, unknown>) => Promise<EmscriptenModule>;

/**
 * The thread count asked for (Node only): EDKM_WASM_THREADS (1 = tfjs's single-threaded build),
 * else the machine's logical cores, at most 8 (the pool the build pre-creates).
 */
export async function wantedThreads(): Promise<number> {
  const env = process.env.EDKM_WASM_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!(Number.isSafeInteger(n) && n >= 1 && n <= 8))
      throw new InvalidArgumentError(`EDKM_WASM_THREADS must be an integer in 1..8, got '${env}'`);
    return n;
  }
  const { availableParallelism } = await import('node:os');
  return Math.max(1, Math.min(8, availableParallelism()));
}

export function isNode(): boolean {
  return typeof process === 'object' && typeof process.versions?.node === 'string';
}

/** A BackendWasm on the threaded SIMD build with `threads` threads (throws where it cannot load). */
export async function threadedBackend(threads: number): Promise<BackendWasm> {
  // Node's modules are imported here, not at the top: the plugin stays loadable in a browser
  const { readFileSync, renameSync, writeFileSync } = await import('node:fs');
  const { createRequire } = await import('node:module');
  const { tmpdir } = await import('node:os');
  const { dirname, join } = await import('node:path');
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '..', 'wasm-out');
  const base = 'tfjs-backend-wasm-threaded-simd';
  const factory = require(join(dir, `${base}.js`)) as Factory;
  // the pthread worker script ships as a string; Emscripten starts it by path
  const { wasmWorkerContents } = require(join(dir, `${base}.worker.js`)) as {
    wasmWorkerContents: string;
  };
  // (written whole under a private name, then renamed: concurrent processes never see half a file)
  const workerFile = join(tmpdir(), `edkm-${base}-${version_wasm}.worker.cjs`);
  writeFileSync(`${workerFile}.${process.pid}`, wasmWorkerContents.replace(/\n/g, '\\n'));
  renameSync(`${workerFile}.${process.pid}`, workerFile);
  const binary = readFileSync(join(dir, `${base}.wasm`));
  const module = await factory({
    locateFile: (path: string) => (path.endsWith('.worker.js') ? workerFile : join(dir, path)),
    instantiateWasm(
      info: { env: Record<string, unknown> },
      receive: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void,
    ) {
      // read by the C++ pool-size cap (logical cores / 2) while the module starts
      info.env.emscripten_num_logical_cores = () => 2 * threads;
      WebAssembly.instantiate(binary, info as unknown as WebAssembly.Imports).then((r) =>
        receive(r.instance, r.module),
      );
      return {};
    },
  });
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  setThreadsCount(threads);
  const backend = new BackendWasm(
    module as unknown as ConstructorParameters<typeof BackendWasm>[0],
  );
  // the pool's threads live as long as the process and must not keep it alive
  for (const w of [
    ...(module.PThread?.runningWorkers ?? []),
    ...(module.PThread?.unusedWorkers ?? []),
  ])
    w.unref();
  return backend;
}
