import { Int8KernelNames, int8MatMul, int8MatMulNT, int8Tensor, seededRandom } from '@edkm/core';
import * as tf from '@tensorflow/tfjs-core';
import type { ConformanceCase } from './index';

/**
 * Conformance cases of Int8MatMul (int8 × int8 → int32, C = A·Bᵀ from packed operands): exact
 * (tolerance 0) against the host's int8MatMulNT. Products stay within ±2^24 (K ≤ 1024), so the
 * suite's float32 comparison is exact too. Shapes that are not multiples of 4, 16 or 32 (K padded
 * to whole words with zeros), one that fits the WebGPU tensor-core kernel's 128×128×32 tile, and
 * the extremes: rows of −128 against rows of −128 and of 127 at K = 1024 (±2^24).
 */
export function int8Cases(): ConformanceCase[] {
  const shapes: { m: number; n: number; k: number; extremes?: boolean }[] = [
    { m: 1, n: 1, k: 1 },
    { m: 3, n: 5, k: 7 },
    { m: 17, n: 33, k: 50 },
    { m: 40, n: 24, k: 96 },
    { m: 128, n: 128, k: 64 },
    { m: 130, n: 129, k: 72 },
    { m: 16, n: 24, k: 1024, extremes: true },
  ];
  return shapes.map(({ m, n, k, extremes }) => ({
    kernelName: Int8KernelNames.Int8MatMul,
    name: `int8MatMul ${m}×${n}×${k}${extremes ? ' (rows of −128 and 127)' : ''}`,
    run: async () => {
      const rnd = seededRandom(m * 131 + n * 17 + k);
      const int8 = () => Math.min(127, Math.floor(rnd() * 256) - 128);
      const a = Int8Array.from({ length: m * k }, int8);
      const b = Int8Array.from({ length: n * k }, int8);
      if (extremes) {
        a.fill(-128, 0, 2 * k); // rows 0 and 1
        b.fill(-128, 0, k); // row 0: +2^24 against A's rows 0 and 1
        b.fill(127, k, 2 * k); // row 1: −127·2^17
        a.fill(127, 2 * k, 3 * k); // row 2 with B's row 1: 127²·1024
      } else {
        a[0] = -128;
        b[0] = -128;
        if (k > 1) {
          a[1] = 127;
          b[1] = -128;
        }
      }
      const ta = int8Tensor(a, m, k);
      const tb = int8Tensor(b, n, k);
      const c = int8MatMul(ta, tb);
      const got = await c.data();
      const shapeOk = c.shape.join() === `${m},${n}` && c.dtype === 'int32';
      tf.dispose([ta, tb, c]);
      if (!shapeOk) throw new Error(`int8MatMul returned [${c.shape}] ${c.dtype}`);
      return {
        actual: Float32Array.from(got),
        expected: Float32Array.from(int8MatMulNT(a, b, m, n, k)),
        tolerance: 0,
      };
    },
  }));
}
