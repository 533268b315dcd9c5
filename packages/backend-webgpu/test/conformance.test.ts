import '../src/index';
import {
  BackendError,
  DecodeKernelNames,
  Int8KernelNames,
  type LinearFusion,
  LinearKernelNames,
  NormKernelNames,
  disposePackedWeight,
  linearReference,
  packedMatMul,
  tf,
  uploadPaletteWeight,
} from '@edkm/core';
import {
  type ConformanceCase,
  conformanceCases,
  randomPalette,
  runConformance,
  seededRandom,
  testBackends,
} from '@edkm/core/testing';
import { describe, expect, it } from 'vitest';
import {
  getWebGPUDeviceInfo,
  setLinearGemm,
  setLinearRoute,
  setMatMulRoute,
  setMaxGroupsPerDimension,
  setPaletteGemv,
  setPaletteLut,
  setSubgroupAttention,
  withBindingCheck,
} from '../src/index';
import { wideAttentionThreads } from '../src/kernels/cached-attention-subgroup';
import { useLinearGemm } from '../src/kernels/linear-gemm';
import { gemvTile, paletteGemvWgsl } from '../src/kernels/palette-gemv';
import { maxSubgroupSize, minSubgroupSize } from '../src/kernels/subgroup-route';

const backends = await testBackends();

/** Every case ran on webgpu and passed. */
async function expectAllPass(cases: ConformanceCase[]): Promise<void> {
  const report = await runConformance('webgpu', cases);
  expect(report.results.length).toBe(cases.length);
  expect(report.failures).toEqual([]);
}

describe.skipIf(!backends.includes('webgpu'))('webgpu plugin', () => {
  it('starts and reports its adapter', () => {
    const info = getWebGPUDeviceInfo();
    expect(info).toBeDefined();
    expect(`${info?.vendor}${info?.description}${info?.device}`.length).toBeGreaterThan(0);
  });

  it('passes the conformance suite', async () => {
    // matMul through the plugin's GEMM even on a software adapter (where 'auto' takes tfjs's)
    setMatMulRoute('gemm');
    try {
      const report = await runConformance('webgpu');
      expect(report.results.length).toBeGreaterThan(10);
      expect(report.failures).toEqual([]);
    } finally {
      setMatMulRoute('auto');
    }
  }, 300_000);

  // the suite above takes the adapter's own shape ('auto'): run the linear kernels in both
  it.each(['reduce', 'rows', 'rows+pairs', 'serial', 'gemv', 'gemm'] as const)(
    'passes the linear kernels in the %s shape',
    async (shape) => {
      const linear: string[] = [LinearKernelNames.PaletteMatMul, LinearKernelNames.Bf16MatMul];
      const cases = conformanceCases().filter((c) => linear.includes(c.kernelName));
      const gemv = shape === 'gemv';
      const route =
        shape === 'reduce' || shape === 'rows' || shape === 'serial'
          ? shape
          : shape === 'rows+pairs'
            ? 'rows'
            : 'auto';
      setLinearRoute(route);
      setPaletteLut(shape === 'rows+pairs' ? 'pairs' : 'lanes');
      // 'gemv': one row of x with K ≥ 2048 through the x-stationary GEMV, also on a software adapter
      setPaletteGemv(gemv ? 'on' : 'auto');
      // 'gemm': two rows of x and more through the linear kernels' GEMM form
      setLinearGemm(shape === 'gemm' ? 'on' : 'off');
      try {
        const report = await runConformance('webgpu', cases);
        expect(report.results.length).toBe(cases.length);
        expect(cases.length).toBeGreaterThan(10);
        expect(report.failures).toEqual([]);
      } finally {
        setLinearRoute('auto');
        setPaletteLut('lanes');
        setPaletteGemv('auto');
        setLinearGemm('auto');
      }
    },
    300_000,
  );

  // the GEMM form at prefill-like shapes: 67 rows of x (a partial tile), 37 weight rows in two LUT
  // groups, permuted and scaled, 1–8 bits, each prologue and the residual (Bf16MatMul: the linear
  // cases above in the gemm shape)
  it('passes PaletteMatMul in the GEMM form over partial tiles', async () => {
    const cases = paletteCases(67);
    setLinearGemm('on');
    try {
      await expectAllPass(cases);
    } finally {
      setLinearGemm('auto');
    }
  }, 300_000);
});

describe("the linear kernels' GEMM form: when it is taken", () => {
  it('from 64 rows of x and 2^20 outputs, word-aligned palettized rows, K in vec4s', () => {
    const p3 = { bits: 3, clusterDim: 1 };
    expect(useLinearGemm(2048, 4096, 4096, p3)).toBe(true); // a 7B prefill
    expect(useLinearGemm(256, 4096, 11008, p3)).toBe(true);
    expect(useLinearGemm(256, 768, 288, p3)).toBe(false); // edkm-tiny: too few outputs
    expect(useLinearGemm(63, 32768, 4096, p3)).toBe(false); // too few rows of x
    expect(useLinearGemm(2048, 4096, 4096, { bits: 3, clusterDim: 2 })).toBe(false);
    expect(useLinearGemm(2048, 4096, 4080, p3)).toBe(false); // rows not word-aligned
    expect(useLinearGemm(2048, 4096, 4080)).toBe(true); // bf16: K in vec4s
    expect(useLinearGemm(2048, 4096, 4098)).toBe(false);
    setLinearGemm('on');
    try {
      expect(useLinearGemm(2, 37, 96, p3)).toBe(true);
      expect(useLinearGemm(1, 37, 96, p3)).toBe(false); // one row: the GEMV
    } finally {
      setLinearGemm('auto');
    }
    setLinearGemm('off');
    try {
      expect(useLinearGemm(2048, 4096, 4096, p3)).toBe(false);
    } finally {
      setLinearGemm('auto');
    }
  });
});

/**
 * One row of x through the GEMV against the reference: 1, 3, 6 and 8 bits at K = 2080 (65
 * chunks: a last subgroup with one chunk in K; whole entries a word, fields across words, and 6
 * bits' workgroup-memory LUT) and 3 bits at K = 2048, each under one of no prologue, RMSNorm + residual
 * and SwiGLU + residual; 37 rows in two LUT groups (a partial workgroup), permuted and scaled.
 * (Few cases: lavapipe compiles each GEMV shader in up to a minute, cold in CI.)
 */
function gemvCases(): ConformanceCase[] {
  return paletteCases(1);
}

/** gemvCases' products for m rows of x (37 rows in the LUT groups `groups`). */
function paletteCases(m: number, groups: number[] = [20, 17]): ConformanceCase[] {
  const fusions: LinearFusion[] = [
    {},
    { prologue: 'rmsnorm', eps: 1e-5, residual: true },
    { prologue: 'swiglu', residual: true },
  ];
  const cases: ConformanceCase[] = [];
  for (const bits of [1, 3, 6, 8])
    (bits === 3 ? [2080, 2048] : [2080]).forEach((k, ki) => {
      const f = fusions[(bits + ki) % 3];
      const seed = 9000 + 10 * bits + ki;
      cases.push({
        kernelName: LinearKernelNames.PaletteMatMul,
        name: `${m === 1 ? 'gemv' : `m=${m}`} bits=${bits} k=${k} ${f.prologue ?? 'plain'}${f.residual ? ' + residual' : ''} groups=${groups}`,
        run: async () => {
          const n = 37;
          const h = randomPalette({ m, n, k, bits, groups, scales: true, permute: true }, seed);
          const rnd = seededRandom(seed);
          const xw = f.prologue === 'swiglu' ? 2 * k : k;
          const x = Float32Array.from({ length: m * xw }, () => rnd() * 4 - 2);
          const g = Float32Array.from({ length: k }, () => 0.5 + rnd());
          const residual = Float32Array.from({ length: m * n }, () => rnd() * 2 - 1);
          const w = uploadPaletteWeight(h);
          const [xt, gt, rt] = [
            tf.tensor2d(x, [m, xw]),
            tf.tensor1d(g),
            tf.tensor2d(residual, [m, n]),
          ];
          const yt = packedMatMul(xt, w, {
            rmsNorm: f.prologue === 'rmsnorm' ? { weight: gt, eps: f.eps as number } : undefined,
            swiglu: f.prologue === 'swiglu',
            residual: f.residual ? rt : undefined,
          });
          const actual = Float32Array.from((await yt.data()) as Float32Array);
          tf.dispose([xt, gt, rt, yt]);
          disposePackedWeight(w);
          const expected = linearReference.paletteMatMul(
            linearReference.prologue(x, m, f, g),
            m,
            h,
          );
          if (f.residual) for (let j = 0; j < m * n; j++) expected[j] += residual[j];
          let max = 1;
          for (const v of expected) max = Math.max(max, Math.abs(v));
          return { actual, expected, tolerance: 1e-6 * k * max };
        },
      });
    });
  return cases;
}

describe.skipIf(!backends.includes('webgpu'))('webgpu plugin: the decode GEMV options', () => {
  // Rows 2 at a time (short compiles at 5–7 bits) unless a case says otherwise.
  it.each([
    // butterfly sums of 4 rows: 2 halving steps, then 1 plain step at lavapipe's 8 lanes; no
    // prefetch
    [
      'butterfly sums of 4 rows, no prefetch',
      { reduce: 'butterfly', rb: 8, unroll: 4, prefetch: false },
    ],
    // 4 rows a workgroup under prefetch (two row groups to pipeline), a subgroupAdd a row (the
    // butterfly is the default where the subgroup size is fixed), every LUT in workgroup memory
    [
      'prefetch, subgroupAdd sums, LUT in workgroup memory',
      { prefetch: true, rb: 4, reduce: 'add', shuffle: false },
    ],
    // persistent workgroups (LUT entries read with the words) walk the row groups of each case:
    // 192 threads are 3 workgroups at K = 2,048 (64 threads; 37 rows: 19 groups of 2, 7 for the
    // first, 6 for the others) and 2 at 2,080 (96), 320 are 5 and 3; with and without the next
    // group's loads ahead
    ['persistent workgroups of 192 threads, prefetch', { grid: 192, prefetch: true }],
    ['persistent workgroups of 320 threads, no prefetch', { grid: 320, prefetch: false }],
  ] as const)(
    '%s matches the reference',
    async (_, tuning) => {
      const cases = gemvCases();
      if ('reduce' in tuning && tuning.reduce === 'butterfly')
        expect(minSubgroupSize()).toBe(maxSubgroupSize());
      setPaletteGemv('on', { unroll: 2, ...tuning });
      expect([1, 3, 6].map((bits) => gemvTile(37, bits, 2048).shuffle)).toEqual(
        'shuffle' in tuning ? [undefined, undefined, undefined] : [8, 8, undefined],
      );
      try {
        await expectAllPass(cases);
      } finally {
        setPaletteGemv('auto');
      }
    },
    300_000,
  );
});

describe.skipIf(!backends.includes('webgpu'))('webgpu plugin: the decode GEMV on one LUT', () => {
  // A weight of one LUT (DKM's one codebook a tensor) takes GemvShape.uniformLut where lookups
  // are shuffles: each lane reads its entry once. The cases of 1 and 3 bits (shuffles on lavapipe's
  // 8 lanes) in a block of rows a workgroup and on persistent workgroups, and once with the rows'
  // products as vec4 dot products instead of fma chains (GemvShape.fma).
  it.each([
    ['a block of rows a workgroup', {}],
    ['persistent workgroups of 192 threads', { grid: 192 }],
    ['vec4 dot products', { fma: false }],
  ] as const)(
    '%s matches the reference',
    async (_, tuning) => {
      const cases = paletteCases(1, [37]).filter((c) => /bits=[13] /.test(c.name));
      expect(cases).toHaveLength(3);
      setPaletteGemv('on', { unroll: 2, ...tuning });
      try {
        await expectAllPass(cases);
      } finally {
        setPaletteGemv('auto');
      }
    },
    300_000,
  );

  it('reads the LUT once a lane, with no LUT staging, and sums fma chains', () => {
    const shape = {
      k: 2048,
      bits: 3,
      rb: 4,
      unroll: 2,
      fusion: {},
      shuffle: 8,
      uniformLut: true,
      fma: true,
    };
    for (const grid of [undefined, 3]) {
      const wgsl = paletteGemvWgsl({ ...shape, grid, n: 37 });
      expect(wgsl).toContain('let lr = lut[sl & 7u];');
      expect(wgsl).not.toContain('lutS');
      expect(wgsl).not.toMatch(/let lr\d/);
      expect(wgsl).toContain('subgroupShuffle(lr, ');
      expect(wgsl).toContain('fma(x7.w, ');
      expect(wgsl).not.toContain('dot(x');
    }
    // several LUTs: a row's entry with the row
    const grouped = paletteGemvWgsl({ ...shape, uniformLut: false, fma: false });
    expect(grouped).toContain('lutS[');
    expect(grouped).toContain('subgroupShuffle(lr0, ');
    expect(grouped).toContain('dot(x7, ');
  });
});

describe.skipIf(!backends.includes('webgpu'))(
  'webgpu plugin: grids folded into two dimensions',
  () => {
    // a dispatch has at most 65,535 workgroups along x; a 2,048-token prefill of 32 heads needs
    // 65,536 (one per row and head). The kernels that take one workgroup per row (and head) fold
    // their grids: with the limit set to 23 here, the conformance cases' small shapes take that path.
    it("passes the row-per-workgroup kernels' cases with 23 workgroups per dimension", async () => {
      const names = new Set<string>([
        DecodeKernelNames.CachedAttention,
        DecodeKernelNames.KvWriteAttention,
        DecodeKernelNames.RmsNorm,
        NormKernelNames.RmsNormGrad,
        Int8KernelNames.Int8QuantizeRows,
        Int8KernelNames.PaletteInt8,
      ]);
      const cases = conformanceCases().filter((c) => names.has(c.kernelName));
      setMaxGroupsPerDimension(23);
      try {
        for (const sub of ['off', 'on'] as const) {
          setSubgroupAttention(sub);
          await expectAllPass(cases);
        }
        expect(() => setMaxGroupsPerDimension(0)).toThrow(/1\.\.65535/);
      } finally {
        setMaxGroupsPerDimension();
        setSubgroupAttention('auto');
      }
    }, 300_000);
  },
);

describe.skipIf(!backends.includes('webgpu'))('webgpu plugin: subgroup attention', () => {
  // the suite takes the adapter's own choice (the serial-loop kernel on a software adapter):
  // CachedAttention on subgroups here too (lavapipe's subgroups are 8 wide, the H200's 32)
  // (and KvWriteAttention's one-position cases in one kernel that writes the cache as it attends)
  it('passes the cached-attention cases on subgroups', async () => {
    const cases = conformanceCases().filter(
      (c) =>
        c.kernelName === DecodeKernelNames.CachedAttention ||
        c.kernelName === DecodeKernelNames.KvWriteAttention,
    );
    try {
      // decoding steps in the wide form (the default: one workgroup of 32 subgroups a head) and
      // split over workgroups: interleaved splits and each split one run of slots
      for (const form of [
        { wide: true },
        { wide: false, interleaved: true },
        { wide: false, interleaved: false },
      ]) {
        setSubgroupAttention('on', form);
        // the wide form is what decoding steps take where the device allows it (lavapipe: 32
        // subgroups of 8), and only there
        expect(wideAttentionThreads(1, 600, 128)).toBe(form.wide ? 32 * minSubgroupSize() : 0);
        expect(wideAttentionThreads(2, 600, 128)).toBe(0);
        expect(wideAttentionThreads(1, 2048, 128)).toBe(0);
        const report = await runConformance('webgpu', cases);
        expect(cases.length).toBeGreaterThan(2);
        expect(report.results.length).toBe(cases.length);
        expect(report.failures, JSON.stringify(form)).toEqual([]);
      }
    } finally {
      setSubgroupAttention('auto');
    }
  }, 300_000);
});

describe('webgpu plugin: tensors over the device storage-binding limit', () => {
  const fakeBackend = (limit: number, disposed: object[]) =>
    ({
      device: { limits: { maxStorageBufferBindingSize: limit } },
      disposeData: (id: object) => disposed.push(id),
    }) as never;
  const info = (shape: number[]): tf.TensorInfo => ({ dataId: {}, shape, dtype: 'float32' });

  it('a kernel refuses an input too large to bind, naming the kernel, the tensor and the limit', () => {
    const kernel = withBindingCheck('EdkmGatherByCode', () => info([4]));
    const run = () =>
      kernel({ inputs: { x: info([64, 1024]) }, backend: fakeBackend(128 * 1024, []), attrs: {} });
    expect(run).toThrow(BackendError);
    expect(run).toThrow(
      /EdkmGatherByCode: its input 'x' \[64,1024\] is 256\.0 KiB, over this WebGPU device's 128\.0 KiB storage-binding limit; palettize the weight in row groups/,
    );
  });

  it('an output too large to bind is released and reported', () => {
    const disposed: object[] = [];
    const out = info([1024, 1024]);
    const kernel = withBindingCheck('EdkmGatherRows', () => out);
    expect(() =>
      kernel({
        inputs: { table: info([2, 2]) },
        backend: fakeBackend(2 ** 20, disposed),
        attrs: {},
      }),
    ).toThrow(/its output \[1024,1024\] is 4\.0 MiB, over this WebGPU device's 1\.0 MiB/);
    expect(disposed).toEqual([out.dataId]);
  });

  it('within the limit, the kernel runs unchanged', () => {
    const out = info([4]);
    expect(
      withBindingCheck(
        'K',
        () => out,
      )({ inputs: { a: info([4]) }, backend: fakeBackend(1024, []), attrs: {} }),
    ).toBe(out);
  });
});
