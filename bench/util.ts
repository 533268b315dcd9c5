import os from 'node:os';
import { roundToHalf, tf } from '@edkm/core';

/** Shared helpers of the bench scripts: flags and one JSON object on stdout. */
export function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

export function argNumber(name: string, fallback: number): number {
  const v = argValue(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${v}`);
  return n;
}

export function printJson(result: object): void {
  process.stdout.write(`${JSON.stringify({ ...result, machine: machine() }, null, 2)}\n`);
}

function machine() {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  };
}

export const median = (a: number[]): number =>
  [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/** The seven linear weights of one LLaMA-7B decoder layer, by shape. */
export const LLAMA7B_LAYER: { name: string; shape: [number, number]; count: number }[] = [
  { name: 'q/k/v/o_proj', shape: [4096, 4096], count: 4 },
  { name: 'gate/up_proj', shape: [11008, 4096], count: 2 },
  { name: 'down_proj', shape: [4096, 11008], count: 1 },
];

/** LLaMA-like weights: N(0, 0.02²) rounded to bf16 (deterministic). */
export function llamaWeights(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u1 = (s + 1) / 4294967297;
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u2 = s / 4294967296;
    const r = 0.02 * Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return roundToHalf(out, 'bf16');
}

/**
 * Waits until the GPU finished everything queued before (queues run in order) by reading one
 * element: reading a whole tensor would time the device→host copy instead of the computation.
 */
export async function sync(t: {
  slice(begin: number[], size: number[]): { data(): Promise<unknown>; dispose(): void };
  rank: number;
}): Promise<void> {
  const one = t.slice(new Array(t.rank).fill(0), new Array(t.rank).fill(1));
  await one.data();
  one.dispose();
}

/** About a second of 4096³ products, so that the GPU's clocks are up before a measurement. */
export async function warmUpGpu(): Promise<void> {
  const a = tf.randomUniform([4096, 4096], -1, 1, 'float32', 3);
  const t0 = performance.now();
  while (performance.now() - t0 < 1000) {
    const c = tf.matMul(a, a);
    await sync(c);
    c.dispose();
  }
  a.dispose();
}

/**
 * Makes a tensor resident on the device before a measurement: WebGPU uploads a tensor created
 * from host values (tf.tensor, tf.randomNormal, ...) at its first use, and that upload would
 * otherwise be counted as the first measured op's memory.
 */
export async function resident(t: {
  slice(begin: number[], size: number[]): { data(): Promise<unknown>; dispose(): void };
  rank: number;
  add(x: number): {
    rank: number;
    slice(begin: number[], size: number[]): { data(): Promise<unknown>; dispose(): void };
    dispose(): void;
  };
}): Promise<void> {
  const touched = t.add(0);
  await sync(touched);
  touched.dispose();
}

/** A matrix product's transposed form: N or T for each of A and B. */
export type Form = 'NN' | 'NT' | 'TN' | 'TT';

/**
 * A GEMM check's two sides for A [m, k] and B [k, n] stored as `form` says (row-major values av,
 * bv): `got`, tf.matMul's product [m, n] on the active backend, and `ref(i, j)`, its entry as a
 * float64 sum.
 */
export async function gemmSides(
  av: Float32Array,
  bv: Float32Array,
  m: number,
  k: number,
  n: number,
  form: Form,
): Promise<{ got: Float32Array; ref: (i: number, j: number) => number }> {
  const tA = form[0] === 'T';
  const tB = form[1] === 'T';
  const a = tf.tensor2d(av, tA ? [k, m] : [m, k]);
  const b = tf.tensor2d(bv, tB ? [n, k] : [k, n]);
  const c = tf.matMul(a, b, tA, tB);
  const got = (await c.data()) as Float32Array;
  tf.dispose([a, b, c]);
  const ref = (i: number, j: number) => {
    let s = 0;
    for (let p = 0; p < k; p++)
      s += av[tA ? p * m + i : i * k + p] * bv[tB ? j * k + p : p * n + j];
    return s;
  };
  return { got, ref };
}
