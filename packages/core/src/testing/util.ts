import * as tf from '@tensorflow/tfjs-core';

export function randomFloats(n: number, rnd: () => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rnd() * 2 - 1;
  return a;
}

export function randomIndices(
  n: number,
  range: number,
  rnd: () => number,
  skew = false,
): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = skew && rnd() < 0.8 ? 0 : Math.floor(rnd() * range);
  return a;
}

/**
 * Floats that exercise 16-bit rounding: LLM-like weights, exact halfway points (ties to even),
 * ±0, fp16 subnormals and overflow, ±Inf and NaN.
 */
export function hardFloats(n: number, rnd: () => number, dtype: 'bf16' | 'fp16'): Float32Array {
  const a = new Float32Array(n);
  const bits = new Uint32Array(a.buffer);
  const shift = dtype === 'bf16' ? 16 : 13;
  for (let i = 0; i < n; i++) {
    const kind = i % 8;
    if (kind < 4) a[i] = (rnd() * 2 - 1) * 0.05;
    else if (kind === 4) {
      a[i] = (rnd() * 2 - 1) * 2;
      bits[i] = (bits[i] & ~((1 << shift) - 1)) | (1 << (shift - 1)); // exactly halfway
    } else if (kind === 5) a[i] = (rnd() * 2 - 1) * 1e-6;
    else if (kind === 6) a[i] = (rnd() * 2 - 1) * 1e5;
    else a[i] = [0, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN][i % 5];
  }
  return a;
}

export async function runOp(fn: () => tf.Tensor): Promise<Float32Array> {
  const out = tf.tidy(fn);
  const data = (await out.data()) as Float32Array;
  out.dispose();
  return Float32Array.from(data);
}
