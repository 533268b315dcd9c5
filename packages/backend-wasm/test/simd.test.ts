import {
  linearReference,
  packedMatMul,
  seededRandom,
  tf,
  toHalfBits,
  uploadBf16Weight,
  useBackend,
} from '@edkm/core';
import { describe, expect, it } from 'vitest';
import '../src/index';
import { simdKernels } from '../src/simd';

describe('wasm plugin: SIMD kernels', () => {
  it('instantiates on the backend memory in Node, and bf16 decoding through it equals the reference', async () => {
    await useBackend('wasm');
    expect(simdKernels(tf.backend() as never)).toBeDefined();
    const rnd = seededRandom(9);
    // k a multiple of 16 (the SIMD path), rows the vocabulary-like long side
    const [n, k] = [300, 96];
    const bits = toHalfBits(
      Float32Array.from({ length: n * k }, () => rnd() * 2 - 1),
      'bf16',
    );
    const x = Float32Array.from({ length: k }, () => rnd() * 2 - 1);
    const w = uploadBf16Weight([n, k], bits);
    const y = await packedMatMul(tf.tensor2d(x, [1, k]), w).data();
    const expected = linearReference.bf16MatMul(x, 1, bits, n, k);
    for (let i = 0; i < n; i++) expect(Math.abs(y[i] - expected[i])).toBeLessThan(1e-4);
  });
});
