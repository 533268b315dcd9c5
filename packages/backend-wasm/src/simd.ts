import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { simdModules } from './simd-modules';

/**
 * The plugin's own wasm kernels (hand-written WebAssembly, SIMD where it pays in `simd/*.wat`, assembled by
 * scripts/build-simd.mjs), instantiated on the memory that tfjs-backend-wasm keeps its tensors in,
 * so that they read and write tensors in place by heap offset. Undefined where the runtime has no
 * wasm SIMD or the module's memory is not reachable; the kernels then take their JS paths.
 */
export interface SimdKernels {
  /** y[r] = Σⱼ x[j]·W[r, j], W [n, k] bf16 pairs, k a multiple of 16 (byte offsets). */
  bf16Gemv(w: number, x: number, y: number, n: number, k: number): void;
  /**
   * sums[s] = Σ_run tables[run·64 + code(s, run)] for s < n rows of 6-bit codes, 16 to every 3
   * words, rows word-aligned and `runs` a multiple of 16 (core's lookupGemv; byte offsets).
   */
  lookup6Sums(codes: number, tables: number, sums: number, n: number, runs: number): void;
  /** core's lookupTables for 3-bit pairs: 64 sums per run of two x values (byte offsets). */
  tablesPairs3(x: number, lut: number, out: number, runs: number): void;
}

const cache = new WeakMap<object, SimdKernels | null>();

function decode(base64: string): Uint8Array {
  if (typeof Buffer !== 'undefined') return Uint8Array.from(Buffer.from(base64, 'base64'));
  const s = atob(base64);
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/** The SIMD kernels on this backend's memory (instantiated once per backend), or undefined. */
export function simdKernels(backend: BackendWasm): SimdKernels | undefined {
  const module = backend.wasm as unknown as {
    wasmMemory?: WebAssembly.Memory;
    asm?: { memory?: WebAssembly.Memory };
  };
  const known = cache.get(module);
  if (known !== undefined) return known ?? undefined;
  let kernels: SimdKernels | null = null;
  // EDKM_WASM_SIMD=0 turns them off (comparisons)
  const off = typeof process !== 'undefined' && process.env?.EDKM_WASM_SIMD === '0';
  // the threaded build keeps its (shared) memory as wasmMemory, the single-threaded one exports it
  const memory = module.wasmMemory ?? module.asm?.memory;
  if (!off && memory instanceof WebAssembly.Memory) {
    try {
      const shared =
        typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
      const load = (name: string) =>
        new WebAssembly.Instance(
          new WebAssembly.Module(decode(simdModules[name][shared ? 'shared' : 'plain'])),
          { env: { memory } },
        ).exports;
      const lookup = load('lookup6');
      kernels = {
        bf16Gemv: load('bf16-gemv').bf16_gemv as SimdKernels['bf16Gemv'],
        lookup6Sums: lookup.lookup6_sums as SimdKernels['lookup6Sums'],
        tablesPairs3: lookup.tables_pairs3 as SimdKernels['tablesPairs3'],
      };
    } catch {
      kernels = null; // no SIMD in this runtime: the JS paths
    }
  }
  cache.set(module, kernels);
  return kernels ?? undefined;
}
