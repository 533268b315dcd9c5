// The pure parts of the int8 tensor-core GEMM bench (bench/int8-kernels.ts, the generator from
// packages/backend-webgpu/src/int8-wgsl.ts): tile plans, shape
// checks, the grouped workgroup order, the generated WGSL; and, where WebGPU starts (lavapipe on
// CI), every kernel shape run in its emulated form against the host's product.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  INT8_CHECK_SHAPES,
  INT8_MATMUL_SPEC,
  INT8_TIMED_SHAPES,
  groupedTile,
  int8Dims,
  int8GemmWgsl,
  int8Grid,
  int8ShapeMisfit,
  int8Variants,
  int8VariantsRound1,
  int8VariantsRound2,
  planInt8Kernel,
  spec,
  specName,
} from '../bench/int8-kernels';

const frag = { m: 16, n: 16, k: 32 };

describe('planInt8Kernel', () => {
  it('sizes the default staged kernel: 128×128 over 4 subgroups, 64-byte slices, padded rows', () => {
    const p = planInt8Kernel(spec({}), frag);
    expect(p).toEqual({
      threads: 128,
      bm: 128,
      bn: 128,
      bk: 64,
      kMultiple: 64,
      lds: 80,
      smemBytes: 2 * 256 * 80,
      aLoads: 4,
      bLoads: 4,
      aGuard: false,
      bGuard: false,
    });
  });

  it('guards the last copy when the slice does not divide over the threads', () => {
    // 3 subgroups (96 lanes), 64×32 bytes of A = 128 vec4s: 2 loads, the second partial
    const p = planInt8Kernel(spec({ sy: 1, sx: 3, bk: 32 }), frag);
    expect([p.bm, p.bn, p.aLoads, p.aGuard, p.bLoads, p.bGuard]).toEqual([
      64,
      192,
      2,
      true,
      4,
      false,
    ]);
  });

  it('gives direct and probe kernels one subgroup and no workgroup memory', () => {
    for (const kind of ['direct', 'probe'] as const) {
      const p = planInt8Kernel(spec({ kind, sy: 4, sx: 4, tm: 2, tn: 4 }), frag);
      expect([p.threads, p.bm, p.bn, p.bk, p.smemBytes]).toEqual([32, 32, 64, 32, 0]);
    }
    const n8 = planInt8Kernel(spec({ kind: 'direct', tn: 8, fragN: 8 }), { m: 16, n: 8, k: 32 });
    expect([n8.bm, n8.bn]).toEqual([64, 64]);
  });

  it('refuses specs it cannot generate', () => {
    expect(() => planInt8Kernel(spec({ bk: 48 }), frag)).toThrow(/bk 48/);
    expect(() => planInt8Kernel(spec({ pad: 8 }), frag)).toThrow(/pad 8/);
    expect(() => planInt8Kernel(spec({ fragN: 8 }), frag)).toThrow(/fragment N/);
    expect(() => planInt8Kernel(spec({ tm: 0 }), frag)).toThrow(/positive/);
  });
});

describe('shapes', () => {
  it('every default variant tiles every default shape exactly', () => {
    for (const v of int8Variants) {
      const p = planInt8Kernel(v, { ...frag, n: v.fragN });
      for (const [m, n, k] of [...INT8_TIMED_SHAPES, ...INT8_CHECK_SHAPES])
        expect(int8ShapeMisfit(p, m, n, k), `${specName(v)} ${m}x${n}x${k}`).toBeUndefined();
    }
  });

  it('names what does not divide', () => {
    const p = planInt8Kernel(spec({}), frag);
    expect(int8ShapeMisfit(p, 100, 128, 64)).toMatch(/M 100/);
    expect(int8ShapeMisfit(p, 128, 128, 96)).toMatch(/K 96 is not a multiple of the slice's 64/);
    expect(int8ShapeMisfit(p, 256, 384, 128)).toBeUndefined();
    expect(int8Grid(p, 256, 384)).toEqual([3, 2]);
    expect(Array.from(int8Dims(p, 256, 384, 128))).toEqual([256, 384, 128, 2, 3, 2, 0, 0]);
  });

  it('default variant names are unique', () => {
    for (const list of [int8Variants, int8VariantsRound1, int8VariantsRound2]) {
      const names = list.map(specName);
      expect(new Set(names).size).toBe(names.length);
    }
    expect(int8Variants.length).toBeLessThanOrEqual(16);
    expect(specName(int8VariantsRound2[0])).toBe('staged1-2x2sg-4x4-k32-p16-g8'); // round 1's winner
    // the default round's first is its winner, the plugin's default kernel
    expect(specName(int8Variants[0])).toBe(specName(INT8_MATMUL_SPEC));
    expect(specName(INT8_MATMUL_SPEC)).toBe('staged1-2x2sg-4x4-k64-p16-g16-a1-blk');
    for (const v of int8Variants)
      expect(planInt8Kernel(v, { m: 16, n: v.fragN, k: 32 }).smemBytes).toBeLessThanOrEqual(49152);
  });

  it('an unrolled kernel needs K in pairs of slices; ahead 2 needs the unrolled loop', () => {
    const p = planInt8Kernel(spec({ stages: 2, bk: 32, unroll: true }), frag);
    expect(p.kMultiple).toBe(64);
    expect(int8ShapeMisfit(p, 128, 128, 96)).toMatch(/not a multiple of two slices \(64\)/);
    expect(int8ShapeMisfit(p, 128, 128, 128)).toBeUndefined();
    expect(() => planInt8Kernel(spec({ stages: 2, ahead: 2 }), frag)).toThrow(/not unrolled/);
    expect(() => planInt8Kernel(spec({ stages: 1, unroll: true }), frag)).toThrow(/unroll/);
    expect(specName(spec({ stages: 1, bk: 32, ahead: 1 }))).toBe('staged1-2x2sg-4x4-k32-p16-g8-a1');
    expect(specName(spec({ stages: 2, bk: 32, ahead: 0, unroll: true }))).toBe(
      'staged2-2x2sg-4x4-k32-p16-g8-a0-u',
    );
  });
});

describe('groupedTile', () => {
  it.each([
    [16, 86, 8],
    [64, 64, 8],
    [3, 5, 2],
    [7, 4, 8],
    [5, 5, 0],
  ])('is a permutation of a %i×%i grid (groups of %i rows)', (tilesM, tilesN, group) => {
    const seen = new Set<number>();
    for (let y = 0; y < tilesM; y++)
      for (let x = 0; x < tilesN; x++) {
        const [tm, tn] = groupedTile(x, y, tilesM, tilesN, group);
        expect(tm).toBeGreaterThanOrEqual(0);
        expect(tm).toBeLessThan(tilesM);
        expect(tn).toBeGreaterThanOrEqual(0);
        expect(tn).toBeLessThan(tilesN);
        seen.add(tm * tilesN + tn);
      }
    expect(seen.size).toBe(tilesM * tilesN);
  });

  it('walks a group column by column', () => {
    // 4 tile rows in groups of 2, 3 columns: workgroups 0..5 cover rows 0-1, columns 0..2
    const order = [0, 1, 2, 3, 4, 5].map((pid) =>
      groupedTile(pid % 3, Math.floor(pid / 3), 4, 3, 2),
    );
    expect(order).toEqual([
      [0, 0],
      [1, 0],
      [0, 1],
      [1, 1],
      [0, 2],
      [1, 2],
    ]);
  });
});

describe('int8GemmWgsl', () => {
  it('writes subgroup-matrix calls with int8-element offsets and strides', () => {
    const w = int8GemmWgsl(spec({}), { frag });
    expect(w).toMatch(/^enable chromium_experimental_subgroup_matrix, subgroups;/);
    expect(w).toContain('diagnostic(off, chromium_experimental.subgroup_matrix_uniformity);');
    expect(w).toContain('alias L = subgroup_matrix_left<i8, 32, 16>;');
    expect(w).toContain('alias R = subgroup_matrix_right<i8, 16, 32>;');
    expect(w).toContain('alias Acc = subgroup_matrix_result<i32, 16, 16>;');
    expect(w).toContain('@builtin(subgroup_id) sgid: u32');
    expect(w).toContain('var<workgroup> As: array<i32, 5120>;');
    // second 32-wide K step of fragment row 1: 16 rows of 80 bytes + 32
    expect(w).toContain('subgroupMatrixLoad<L>(&As, aB + 1312u, false, 80u)');
    expect(w).toContain('subgroupMatrixLoad<R>(&Bs, bB + 1280u, true, 80u)');
    expect(w).toContain('subgroupMatrixStore(&C, (cr + 48u) * N + cc + 48u, c3_3, false, N);');
    expect(w.match(/workgroupBarrier\(\)/g)?.length).toBe(2); // the prologue's and one per slice
    expect(w).not.toMatch(/\/ 4u, (false|true)/);
  });

  it('writes constant buffer offsets when unrolled, and the barriers each form needs', () => {
    const count = (over: Parameters<typeof spec>[0]) =>
      int8GemmWgsl(spec(over), { frag }).match(/workgroupBarrier\(\)/g)?.length;
    expect(count({ stages: 1, bk: 32 })).toBe(2); // copy | multiply |
    expect(count({ stages: 1, bk: 32, ahead: 1 })).toBe(3); // prologue; multiply | store |
    expect(count({ stages: 2, bk: 32, unroll: true })).toBe(3); // prologue; one per slice, 2 slices
    expect(count({ stages: 2, bk: 32, ahead: 0, unroll: true })).toBe(2);
    const u = int8GemmWgsl(spec({ stages: 2, bk: 32, unroll: true }), { frag });
    expect(u).not.toContain('cur');
    expect(u).toContain('let aB = 6144u + aSub;'); // buffer 1 of A: 128 rows × 48 bytes
    expect(u).toContain('for (var t = 0u; t < dims.kTiles; t += 2u) {');
    const a2 = int8GemmWgsl(spec({ stages: 2, bk: 32, ahead: 2, unroll: true }), { frag });
    expect(a2).toContain('var ra0_1: vec4<u32>;');
    expect(a2).toContain('if ((t + 1u) + 2u < dims.kTiles) {');
  });

  it('loads every fragment of a blocks kernel at a constant offset of its subgroup block', () => {
    const w = int8GemmWgsl(spec({ stages: 2, bk: 32, unroll: true, blocks: true }), { frag });
    // 2 buffers × 2 subgroup rows of A, 64 rows × 48 bytes each (12 words a row)
    expect(w).toContain('var<workgroup> As: array<array<i32, 768>, 4>;');
    expect(w).toContain('var<workgroup> Bs: array<array<i32, 768>, 4>;');
    expect(w).toContain('let aK = 2u + wy;'); // buffer 1
    expect(w).toContain('subgroupMatrixLoad<L>(&As[aK], 768u, false, 48u)'); // fragment row 1
    expect(w).toContain('subgroupMatrixLoad<R>(&Bs[bK], 2304u, true, 48u)'); // fragment column 3
    expect(w).not.toMatch(/subgroupMatrixLoad<[LR]>\(&[AB]s\[[a-zA-Z]+\], [a-z]/); // no run-time offset
    // a thread's copy: block of its row (64 rows × 2 vec4s = 128 vec4s a block), word in the block
    expect(w).toContain(
      'let ak0 = av0 / 128u; let as0 = ((av0 / 2u) % 64u) * 12u + (av0 % 2u) * 4u;',
    );
    expect(w).toContain('As[ak0_][aw0 + 3u] = bitcast<i32>(ra0.w);');
    const e = int8GemmWgsl(spec({ blocks: true }), { frag, emulate: true });
    expect(e).toContain('L(2u, aK * 5120u + 1280u, 80u)'); // the emulation's flat offset
    expect(e).toContain('case 2u: { w = As[(i / 4u) / 1280u][(i / 4u) % 1280u]; }');
  });

  it('divides load offsets by 4 for the i32-word reading', () => {
    const w = int8GemmWgsl(spec({ kind: 'direct' }), { frag, offsetDiv: 4 });
    expect(w).toContain('subgroupMatrixLoad<L>(&A, ((row0 + 16u) * K + k) / 4u, false, K)');
    expect(w).toContain('subgroupMatrixStore(&C, (row0 + 0u) * N + col0 + 16u, c0_1, false, N);');
  });

  it('uses local_invocation_index / 32 when asked, and no subgroups enable', () => {
    const w = int8GemmWgsl(spec({ sgid: 'index' }), { frag });
    expect(w).toMatch(/^enable chromium_experimental_subgroup_matrix;/);
    expect(w).toContain('let sgi = li / 32u;');
    expect(w).not.toContain('subgroup_id');
  });

  it('emulates without any subgroup-matrix call', () => {
    for (const v of int8Variants) {
      const w = int8GemmWgsl(v, { frag: { ...frag, n: v.fragN }, emulate: true });
      expect(w).not.toMatch(/subgroupMatrix|chromium_experimental|subgroup_id|enable/);
      expect(w).toContain('fn mma(a: L, b: R, c: Acc) -> Acc');
    }
  });

  it('keeps the probe kernel as the probe wrote it (arrays, rolled loops)', () => {
    const w = int8GemmWgsl(spec({ kind: 'probe', group: 0 }), { frag });
    expect(w).toContain('var acc: array<Acc, 16>;');
    expect(w).toContain('a[i] = subgroupMatrixLoad<L>(&A, (row0 + i * 16u) * K + k, false, K);');
  });
});

// the emulated kernels on a real WebGPU adapter (lavapipe without a GPU): each default variant
// against the host's int8 product (skipped where WebGPU does not start)
const root = fileURLToPath(new URL('..', import.meta.url));
const tsx = `${root}node_modules/.bin/tsx`;
describe('emulated kernels on WebGPU', () => {
  it('are exact on a small product', { timeout: 600_000 }, (ctx) => {
    if (!existsSync(tsx) || process.env.EDKM_SKIP_WEBGPU === '1') ctx.skip();
    let text: string;
    try {
      text = execFileSync(
        tsx,
        [
          'int8.ts',
          '--emulate',
          '--round',
          'all',
          '--only',
          '^(probe|direct-4x4-g8|staged1-2x2sg-4x4-k32-p16-g8|staged1-2x2sg-4x4-k32-p16-g8-a1|staged2-2x2sg-4x4-k32-p16-g8-u|staged2-2x4sg-4x2-k32-p16-g8-a2-u|staged1-2x2sg-4x4-k64-p16-g16-a1-blk)$',
          '--check-shapes',
          '128x128x128',
        ],
        {
          cwd: `${root}bench`,
          encoding: 'utf8',
          env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
          stdio: ['ignore', 'pipe', 'ignore'],
        },
      );
    } catch {
      return ctx.skip();
    }
    const out = JSON.parse(text);
    if (!out.available) return ctx.skip();
    expect(out.results.length).toBe(7);
    for (const r of out.results) expect(r, r.variant).toMatchObject({ exact: true, wrong: 0 });
  });
});
