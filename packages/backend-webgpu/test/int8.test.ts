import '../src/index';
import {
  Int8KernelNames,
  decodeReference,
  disposePackedWeight,
  int8MatMulPacked,
  int8RescaleHost,
  packedMatMulW8A8,
  paletteInt8Host,
  quantizeRowsHost,
  seededRandom,
  splitMatMul,
  tf,
  unpackInt8,
  uploadPaletteWeight,
  useBackend,
} from '@edkm/core';
import {
  conformanceCases,
  randomFloats,
  randomPalette,
  runConformance,
  testBackends,
} from '@edkm/core/testing';
import { describe, expect, it } from 'vitest';
import {
  getWebGPUDeviceInfo,
  int8MatMulRoute,
  int8SplitRoute,
  setInt8MatMulSpec,
  setInt8Route,
  setInt8SplitSpec,
  setMatMulPrecision,
  setSplitKernel,
  takesSplit,
} from '../src/index';
import {
  int8Device,
  int8MatMulSpec,
  int8SplitMatMul,
  setInt8Device,
} from '../src/kernels/int8-matmul';

const backends = await testBackends();

// EdkmInt8MatMul: the suite's int8 cases through each form the kernel has. Without subgroup
// matrices (lavapipe, or no EDKM_WEBGPU_UNSAFE=1) 'auto' is the plain loop; 'emulate' runs the
// tensor-core kernel's tiling with the subgroup-matrix calls in plain WGSL (shapes of whole tiles;
// the others still take the plain loop).
describe.skipIf(!backends.includes('webgpu'))('webgpu plugin: int8 matmul', () => {
  const cases = () => conformanceCases().filter((c) => c.kernelName === Int8KernelNames.Int8MatMul);

  it('reports whether subgroup matrices are on, and routes by shape', () => {
    const info = getWebGPUDeviceInfo();
    expect(typeof info?.subgroupMatrix).toBe('boolean');
    setInt8Route('emulate');
    try {
      expect(int8MatMulRoute(128, 128, 128)).toBe('emulate');
      expect(int8MatMulRoute(130, 128, 128)).toBe('plain'); // not whole 128×128 tiles
      expect(int8MatMulRoute(128, 128, 72)).toBe('plain'); // K not whole 64-byte slices
    } finally {
      setInt8Route('auto');
    }
    if (!info?.subgroupMatrix) expect(int8MatMulRoute(128, 128, 128)).toBe('plain');
  });

  it.each(['auto', 'plain', 'emulate'] as const)(
    'passes the int8 cases (%s)',
    async (route) => {
      setInt8Route(route);
      try {
        const report = await runConformance('webgpu', cases());
        expect(report.results.length).toBeGreaterThanOrEqual(6);
        expect(report.failures).toEqual([]);
      } finally {
        setInt8Route('auto');
      }
    },
    600_000,
  );

  it("takes the blocks tile with Dawn's robustness on or off, and passes emulated", async () => {
    const before = int8Device();
    expect(before.robust).not.toBe(false); // (the tests run with robustness)
    const tile = { tm: 4, tn: 4, sy: 2, sx: 2, blocks: true };
    expect(int8MatMulSpec()).toMatchObject(tile);
    setInt8Device({ ...before, robust: false });
    setInt8Route('emulate');
    try {
      expect(int8MatMulSpec()).toMatchObject(tile);
      expect(int8MatMulRoute(256, 128, 128)).toBe('emulate');
      expect(int8MatMulRoute(128, 128, 96)).toBe('plain'); // K not whole 64-byte slices
      const report = await runConformance('webgpu', cases());
      expect(report.failures).toEqual([]);
    } finally {
      setInt8Device(before);
      setInt8Route('auto');
    }
  }, 600_000);

  it.each([
    ['two buffers unrolled, blocks', { stages: 2, unroll: true } as const],
    ['flat workgroup arrays, 8 subgroups of 16×128', { blocks: false, sy: 8, sx: 1, tm: 1, tn: 8 }],
  ])(
    'runs another variant, emulated (%s)',
    async (_, over) => {
      setInt8Route('emulate');
      setInt8MatMulSpec(over);
      try {
        expect(int8MatMulSpec()).toMatchObject(over);
        const report = await runConformance('webgpu', cases());
        expect(report.failures).toEqual([]);
      } finally {
        setInt8Route('auto');
        setInt8MatMulSpec(undefined);
      }
    },
    600_000,
  );
});

// W8A8 and the split product on the GPU against their host definitions (core's int8-linear.ts),
// up to one int8 step where float32 division rounds 127 / max differently
/** ‖b − a‖ / ‖a‖ (a the reference). */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += a[i] ** 2;
  }
  return Math.sqrt(num / den);
}

describe.skipIf(!backends.includes('webgpu'))('webgpu plugin: W8A8 and split products', () => {
  it.each(['auto', 'emulate'] as const)(
    'packedMatMulW8A8 with the RMSNorm prologue and a residual (%s int8 route)',
    async (route) => {
      await useBackend('webgpu');
      // not whole tiles: the operands are padded to 128 rows and K to 64 bytes (emulate: tiled)
      const [m, n, k] = [100, 120, 96];
      const h = randomPalette({ m, n, k, bits: 3, scales: true, permute: true }, 3);
      const rnd = seededRandom(4);
      const x = randomFloats(m * k, rnd);
      const g = Float32Array.from({ length: k }, () => 0.5 + rnd());
      const res = Float32Array.from({ length: m * n }, () => rnd() - 0.5);
      setInt8Route(route);
      try {
        const w = uploadPaletteWeight(h);
        const t = [tf.tensor2d(x, [m, k]), tf.tensor1d(g), tf.tensor2d(res, [m, n])] as const;
        const y = packedMatMulW8A8(t[0], w, {
          rmsNorm: { weight: t[1], eps: 1e-5 },
          residual: t[2],
        });
        const got = await y.data();
        tf.dispose([y, ...t]);
        disposePackedWeight(w);
        const qa = quantizeRowsHost(decodeReference.rmsNorm(x, k, g, 1e-5), m, k, 1);
        const qb = paletteInt8Host(h);
        const c = int8MatMulPacked(qa.hi, qb.b, m, n, k / 4);
        const want = int8RescaleHost(c, qa.scale, qb.sb, { residual: res });
        expect(relErr(want, got)).toBeLessThan(1e-4);
      } finally {
        setInt8Route('auto');
      }
    },
    300_000,
  );

  it('splitMatMul', async () => {
    await useBackend('webgpu');
    const [m, n, k] = [20, 36, 72];
    const rnd = seededRandom(5);
    const a = randomFloats(m * k, rnd);
    const b = randomFloats(n * k, rnd);
    const t = [tf.tensor2d(a, [m, k]), tf.tensor2d(b, [n, k])] as const;
    const c = splitMatMul(t[0], t[1]);
    const got = await c.data();
    tf.dispose([c, ...t]);
    const qa = quantizeRowsHost(a, m, k, 2);
    const qb = quantizeRowsHost(b, n, k, 2);
    const w = k / 4;
    const want = int8RescaleHost(int8MatMulPacked(qa.hi, qb.hi, m, n, w), qa.scale, qb.scale, {
      c2: int8MatMulPacked(qa.hi, qb.lo as Int32Array, m, n, w),
      c3: int8MatMulPacked(qa.lo as Int32Array, qb.hi, m, n, w),
      lo: 1 / 256,
    });
    expect(relErr(want, got)).toBeLessThan(1e-6);
    expect(unpackInt8(qa.hi).some((v) => v !== 0)).toBe(true);
  }, 300_000);
});

// setMatMulPrecision('split'): tfjs's float32 matMul (every transposed form, and so training's
// gradients) through the split-precision product; the tiled int8 kernel emulated on lavapipe
describe.skipIf(!backends.includes('webgpu'))('webgpu plugin: split matmul precision', () => {
  // the fused kernel (one dispatch, two accumulator sets) against three products of the plain
  // loop: integer products, so equal to the last bit
  it.each([
    ['the default', undefined],
    ['4×4 accumulators a subgroup', { sy: 2, sx: 2, tm: 4, tn: 4 }],
    ['flat workgroup arrays, 8 subgroups of 16×128', { blocks: false, sy: 8, sx: 1, tm: 1, tn: 8 }],
  ] as const)(
    'fused split kernel (%s, emulated) = hi·hi and hi·lo + lo·hi exactly',
    async (_, spec) => {
      await useBackend('webgpu');
      const gpu = tf.backend() as unknown as Parameters<typeof int8SplitMatMul>[0];
      const [m, n, words] = [128, 256, 16]; // K = 64: two slices
      const rnd = seededRandom(31);
      const packed = (rows: number) =>
        tf.tensor2d(
          Int32Array.from({ length: rows * words }, () => Math.floor(rnd() * 2 ** 32) | 0),
          [rows, words],
          'int32',
        );
      const [ahi, alo, bhi, blo] = [packed(m), packed(m), packed(n), packed(n)];
      setInt8SplitSpec(spec);
      setInt8Route('emulate');
      try {
        expect(int8SplitRoute(m, n, 4 * words)).toBe('emulate');
        expect(int8SplitRoute(m, 100, 4 * words)).toBe('plain'); // not whole tiles
        const [c, c2] = int8SplitMatMul(gpu, ahi, alo, bhi, blo).map((t) =>
          tf.engine().makeTensorFromDataId(t.dataId, t.shape, 'int32'),
        );
        setInt8Route('plain');
        const hh = tf
          .engine()
          .runKernel(Int8KernelNames.Int8MatMul, { a: ahi, b: bhi }) as tf.Tensor;
        const hl = tf
          .engine()
          .runKernel(Int8KernelNames.Int8MatMul, { a: ahi, b: blo }) as tf.Tensor;
        const lh = tf
          .engine()
          .runKernel(Int8KernelNames.Int8MatMul, { a: alo, b: bhi }) as tf.Tensor;
        const [cv, c2v, hhv, hlv, lhv] = await Promise.all(
          [c, c2, hh, hl, lh].map((t) => t.data()),
        );
        expect(Array.from(cv)).toEqual(Array.from(hhv));
        expect(Array.from(c2v)).toEqual(Array.from(hlv, (v, i) => (v + lhv[i]) | 0));
        expect(new Set(Array.from(c2v)).size).toBeGreaterThan(1000); // not a constant
        tf.dispose([c, c2, hh, hl, lh]);
      } finally {
        setInt8Route('auto');
        setInt8SplitSpec();
        tf.dispose([ahi, alo, bhi, blo]);
      }
    },
    300_000,
  );

  it('matMul in the four forms, and a gradient, as the float64 product to ~1e-5', async () => {
    await useBackend('webgpu');
    const [m, k, n] = [100, 72, 60];
    const rnd = seededRandom(9);
    const a = randomFloats(m * k, rnd);
    const b = randomFloats(k * n, rnd);
    const ref = new Float64Array(m * n); // A [M, K] · B [K, N]
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < k; t++) s += a[i * k + t] * b[t * n + j];
        ref[i * n + j] = s;
      }
    const rel = (got: ArrayLike<number>) => relErr(ref, got);
    const at = tf.tensor2d(a, [m, k]);
    const bt = tf.tensor2d(b, [k, n]);
    const forms = [
      [at, bt, false, false],
      [at, bt.transpose(), false, true],
      [at.transpose(), bt, true, false],
      [at.transpose(), bt.transpose(), true, true],
    ] as const;
    setInt8Route('emulate');
    setMatMulPrecision('split');
    try {
      expect(takesSplit(m, n, k, 1)).toBe(true);
      expect(takesSplit(m, n, k, 2)).toBe(false); // batched products stay f32
      // the fused kernel (the default), then three products: the same integers, the same floats
      const firsts: Float32Array[] = [];
      for (const kernel of ['fused', 'three'] as const) {
        setSplitKernel(kernel);
        for (const [x, y, ta, tb] of forms) {
          const c = tf.matMul(x, y, ta, tb);
          const got = (await c.data()) as Float32Array;
          c.dispose();
          const err = rel(got);
          expect(err, `${kernel} ${ta} ${tb}`).toBeGreaterThan(1e-7); // not the f32 GEMM
          expect(err, `${kernel} ${ta} ${tb}`).toBeLessThan(3e-5);
          if (!ta && !tb) firsts.push(got);
        }
      }
      expect(Array.from(firsts[0])).toEqual(Array.from(firsts[1]));
      setSplitKernel('fused');
      // d(sum(A·B))/dA = 1·Bᵀ: the gradient's product (NT form) through the split path too
      const g = tf.grad((x: tf.Tensor) => tf.matMul(x as tf.Tensor2D, bt).sum())(at);
      const gv = await g.data();
      g.dispose();
      for (let i = 0; i < m; i += 17)
        for (let t = 0; t < k; t += 7) {
          let s = 0;
          for (let j = 0; j < n; j++) s += b[t * n + j];
          expect(Math.abs(gv[i * k + t] - s)).toBeLessThan(1e-3);
        }
    } finally {
      setMatMulPrecision('f32');
      setSplitKernel('fused');
      setInt8Route('auto');
      tf.dispose([at, bt, ...forms.flat()]);
    }
    expect(() => setMatMulPrecision('bf16' as 'split')).toThrow(/'f32' or 'split'/);
    expect(() => setSplitKernel('two' as 'fused')).toThrow(/'fused' or 'three'/);
  }, 300_000);
});
