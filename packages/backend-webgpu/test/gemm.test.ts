import '../src/index';
import { seededRandom, tf } from '@edkm/core';
import { testBackends } from '@edkm/core/testing';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { describe, expect, it } from 'vitest';
import {
  type GemmTile,
  LARGE_TILE,
  SMALL_TILE,
  WIDE_TILE,
  chooseGemm,
  gemm,
  gemmTileName,
  parseGemmTile,
  setMatMulRoute,
  waveFill,
} from '../src/index';
import { setGemmDevice } from '../src/kernels/batch-matmul';

const backends = await testBackends();

/** op(a)[i % batchA] · op(b)[i % batchB] in float64. */
function reference(
  a: Float32Array,
  b: Float32Array,
  s: { m: number; n: number; k: number; batchA: number; batchB: number },
  tA: boolean,
  tB: boolean,
): Float32Array {
  const { m, n, k } = s;
  const batch = Math.max(s.batchA, s.batchB);
  const out = new Float32Array(batch * m * n);
  for (let z = 0; z < batch; z++) {
    const ao = (z % s.batchA) * m * k;
    const bo = (z % s.batchB) * k * n;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++)
          sum += a[ao + (tA ? p * m + i : i * k + p)] * b[bo + (tB ? j * k + p : p * n + j)];
        out[z * m * n + i * n + j] = sum;
      }
  }
  return out;
}

function floats(n: number, rnd: () => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rnd() * 2 - 1;
  return a;
}

async function check(
  s: { m: number; n: number; k: number; batchA: number; batchB: number },
  tA: boolean,
  tB: boolean,
  tile?: GemmTile,
  splits?: number,
): Promise<number> {
  const rnd = seededRandom(s.m * 131 + s.n * 7 + s.k);
  const av = floats(s.batchA * s.m * s.k, rnd);
  const bv = floats(s.batchB * s.k * s.n, rnd);
  const a = tf.tensor3d(av, tA ? [s.batchA, s.k, s.m] : [s.batchA, s.m, s.k]);
  const b = tf.tensor3d(bv, tB ? [s.batchB, s.n, s.k] : [s.batchB, s.k, s.n]);
  let out: tf.Tensor;
  if (tile || splits) {
    const info = gemm(tf.backend() as WebGPUBackend, a, b, {
      transposeA: tA,
      transposeB: tB,
      tile,
      splits,
    });
    out = tf.engine().makeTensorFromTensorInfo(info);
  } else out = tf.matMul(a, b, tA, tB);
  const got = (await out.data()) as Float32Array;
  const want = reference(av, bv, s, tA, tB);
  expect(got.length).toBe(want.length);
  let err = 0;
  for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
  tf.dispose([a, b, out]);
  return err;
}

const forms: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

// the tile lavapipe runs (K loop rolled: quick to compile there), the large tile once, and a small
// unrolled tile for the code path the GPUs run
const small: GemmTile = { ...SMALL_TILE, unroll: false };
const ragged = { m: 68, n: 132, k: 52, batchA: 3, batchB: 1 }; // vec4, ragged tiles, broadcast

describe.skipIf(!backends.includes('webgpu'))('webgpu GEMM', () => {
  it('matches a float64 reference for every transposed form, tile shape and ragged size', async () => {
    await tf.setBackend('webgpu');
    const cases: [typeof ragged, boolean, boolean, GemmTile][] = [];
    for (const [tA, tB] of forms) {
      cases.push([ragged, tA, tB, small]);
      cases.push([{ m: 3, n: 7, k: 5, batchA: 1, batchB: 1 }, tA, tB, small]); // scalar loads
      if (tA !== tB) cases.push([ragged, tA, tB, { tm: 4, tn: 4, wx: 4, wy: 4, bk: 4 }]);
    }
    // whole tiles, an odd number of K-slices
    cases.push([
      { m: 128, n: 128, k: 48, batchA: 1, batchB: 2 },
      false,
      true,
      { ...LARGE_TILE, unroll: false },
    ]);
    for (const [s, tA, tB, tile] of cases) {
      const err = await check(s, tA, tB, tile);
      expect(err, `${JSON.stringify(s)} tA=${tA} tB=${tB} ${JSON.stringify(tile)}`).toBeLessThan(
        1e-5 * s.k + 1e-6,
      );
    }
  }, 600_000);

  it('grouped workgroup order and block lanes cover every tile once', async () => {
    await tf.setBackend('webgpu');
    // 5 × 4 tiles of 64×64 in groups of 2 tile rows (the last group has one row), and groups
    // taller than the grid; warps of 8×4 thread blocks
    const s = { m: 300, n: 200, k: 24, batchA: 2, batchB: 1 };
    for (const tile of [
      { ...small, group: 2, lanes: 'block' as const },
      { ...small, group: 8 },
      // 512 threads: 128×64 tiles of 8-wide K-slices, fewer vec4s than threads to load
      { ...small, wy: 32, bk: 8, group: 2, lanes: 'block' as const },
    ])
      for (const [tA, tB] of [forms[0], forms[1]]) {
        const err = await check(s, tA, tB, tile);
        expect(err, `${gemmTileName(tile)} tA=${tA} tB=${tB}`).toBeLessThan(1e-5 * s.k + 1e-6);
      }
  }, 600_000);

  it('tile names round-trip and bad tiles are refused', () => {
    for (const name of [
      '8x8x16x16x8',
      '4x4x16x16x16r',
      '8x8x16x16x8g8b',
      '8x8x16x16x8g16',
      '8x8x16x16x8g16bn',
      '8x8x16x32x8g16b',
    ])
      expect(gemmTileName(parseGemmTile(name) as GemmTile)).toBe(name);
    expect(parseGemmTile('8x8x16x16')).toBeUndefined();
    expect(() =>
      gemm(tf.backend() as WebGPUBackend, tf.zeros([1, 4, 4]), tf.zeros([1, 4, 4]), {
        tile: { tm: 4, tn: 4, wx: 4, wy: 4, bk: 4, lanes: 'block' },
      }),
    ).toThrow(/block/);
  });

  it('split-K sums the partial products', async () => {
    await tf.setBackend('webgpu');
    const s = { m: 20, n: 36, k: 300, batchA: 2, batchB: 2 };
    expect(await check(s, false, false, small, 5)).toBeLessThan(1e-5 * s.k);
    expect(await check(s, true, false, small, 4)).toBeLessThan(1e-5 * s.k);
    expect(await check({ ...s, n: 33 }, false, true, small, 3)).toBeLessThan(1e-5 * s.k);
    expect(
      chooseGemm({ m: 32, n: 48, k: 2 ** 20, batch: 1 }, 2 ** 27, false).splits,
    ).toBeGreaterThan(1);
  }, 300_000);

  it('tf.matMul runs through it', async () => {
    await tf.setBackend('webgpu');
    setMatMulRoute('gemm'); // also on a software adapter
    try {
      for (const [tA, tB] of forms)
        expect(await check(ragged, tA, tB)).toBeLessThan(1e-5 * ragged.k);
    } finally {
      setMatMulRoute('auto');
    }
  }, 300_000);
});

describe('GEMM tile choice', () => {
  it('takes the 512-thread tile where its waves are as full as the large tile’s', () => {
    const pick = (m: number, k: number, n: number) =>
      gemmTileName(chooseGemm({ m, n, k, batch: 1 }, 2 ** 31, false).tile);
    try {
      setGemmDevice({
        maxComputeInvocationsPerWorkgroup: 1024,
        maxComputeWorkgroupStorageSize: 49152,
      });
      // 256 wide tiles fill two waves of 132 as well as 512 large ones fill four
      expect(pick(2048, 4096, 4096)).toBe(gemmTileName(WIDE_TILE));
      expect(pick(4096, 4096, 4096)).toBe(gemmTileName(WIDE_TILE));
      // 688 wide tiles fill 6 waves to 87%, 1,376 large ones 11 waves to 95%
      expect(waveFill(688)).toBeCloseTo(688 / 792);
      expect(pick(2048, 4096, 11008)).toBe(gemmTileName(LARGE_TILE));
      // nor where it pads more: 32 heads of 2048 × 128 (attention's probabilities times values)
      expect(
        gemmTileName(chooseGemm({ m: 2048, n: 128, k: 2048, batch: 32 }, 2 ** 31, false).tile),
      ).toBe(gemmTileName(LARGE_TILE));
      // a device without 512-thread workgroups keeps the large tile
      setGemmDevice({
        maxComputeInvocationsPerWorkgroup: 256,
        maxComputeWorkgroupStorageSize: 49152,
      });
      expect(pick(2048, 4096, 4096)).toBe(gemmTileName(LARGE_TILE));
    } finally {
      setGemmDevice({
        maxComputeInvocationsPerWorkgroup: 256,
        maxComputeWorkgroupStorageSize: 16384,
      });
    }
  });
});
