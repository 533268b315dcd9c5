import { groupedTileWgsl } from './tile-order';

// WGSL for int8 × int8 → int32 GEMMs on WebGPU's subgroup matrices (Dawn's
// `chromium_experimental_subgroup_matrix`, tensor cores through VK_KHR_cooperative_matrix), and the
// tile arithmetic behind them. Pure functions (strings and numbers), no side effects: the plugin's
// EdkmInt8MatMul kernel (src/kernels/int8-matmul.ts) runs one of them; bench/int8.ts compiles and
// times many (its variant lists are in bench/int8-kernels.ts); tests/int8-bench.test.ts checks the
// arithmetic. Imported by the bench as `@edkm/backend-webgpu/int8-wgsl` (no tfjs loaded).
//
// C = A·Bᵀ: A is M×K row-major int8, B is N×K row-major int8 (a weight matrix), C is M×N int32.
// A subgroup matrix "left" fragment is FM×FK of A (row-major), a "right" fragment FK×FN of Bᵀ,
// which is B's rows read column-major (element (k, n) at n·stride + k), a "result" FM×FN int32.
//
// Tiling follows the usual GPU GEMM hierarchy (CUTLASS's threadblock / warp / instruction tiles,
// NVIDIA's "Matrix Multiplication Background" guide; Simon Boehm's "How to optimize a CUDA matmul"
// for the register-prefetch double buffer; Triton's grouped tile order for L2 reuse):
//  - a workgroup computes a BM×BN tile of C; BM = sy·tm·FM, BN = sx·tn·FN;
//  - each of its sy×sx subgroups (32 lanes) a (tm·FM)×(tn·FN) block held in tm·tn accumulators;
//  - `direct`: one subgroup per workgroup, fragments loaded straight from storage (L1/L2 only);
//  - `staged`: the workgroup copies a BM×BK slice of A and a BN×BK slice of B into workgroup memory
//    with vec4<u32> loads (16 int8 per load), then every subgroup loads its fragments from there;
//    rows are padded (`pad` bytes) so that the 8 rows a fragment load touches fall in different
//    banks; `stages` workgroup buffers (1 or 2) and `ahead` slices read into registers before the
//    current one is multiplied (0, 1 or 2; default stages − 1):
//      stages 1, ahead 0: copy, barrier, multiply, barrier (round 1's winner);
//      stages 1, ahead 1: the next slice into registers, multiply, barrier, store, barrier (the
//        global loads' latency overlaps the multiply, no second buffer);
//      stages 2, ahead 0: copy into buffer t % 2, barrier, multiply (one barrier per slice);
//      stages 2, ahead 1: the next slice into registers, multiply, store into the other buffer,
//        barrier (one barrier per slice);
//      stages 2, ahead 2: two register sets, slice t + 2 read while t is multiplied and t + 1
//        stored (unrolled only);
//    `unroll` (stages 2) unrolls the slice loop by 2 so that every buffer offset and register set
//    is a constant (round 1's dynamic `t & 1` buffer was 3× slower on the H200; K must then be a
//    multiple of 2·bk);
//  - `probe`: /work/shared/anchors/webgpu_int8_matrix_probe.mjs's kernel (rolled loops, arrays of
//    fragments), the baseline.
// Every inner step is generated unrolled, with one variable per accumulator, so that no subgroup
// matrix sits in an array indexed at run time.
//
// Offsets and strides of subgroupMatrixLoad/Store count elements of the matrix's component type:
// int8 elements (bytes) of an array<i32> for i8 fragments (Tint's SPIR-V writer divides both by 4
// to address the i32 words; so both must be multiples of 4), i32 elements for the int32 result.
// `offsetDiv: 4` generates the other reading (offset in i32 words) for the calibration that
// bench/int8.ts runs first.
//
// `emulate: true` generates the same kernel with the subgroup-matrix calls replaced by plain WGSL
// (a fragment is its (source, offset, stride) and the product reads the bytes when it runs), so that
// the tiling, the copies and the barriers can be checked on an adapter without subgroup matrices
// (lavapipe). The emulation reads workgroup memory at multiply time, not at load time, which is
// the same here because every kernel multiplies fragments before the next barrier.

/** What Dawn's adapter info adds with the experimental subgroup-matrix feature. */
export type SubgroupMatrixAdapterInfo = GPUAdapterInfo & {
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
  subgroupMatrixConfigs?: Iterable<{
    componentType: string;
    resultComponentType: string;
    M: number;
    N: number;
    K: number;
  }>;
};

export interface MatrixShape {
  /** rows of the left fragment and of the result */
  m: number;
  /** columns of the right fragment and of the result */
  n: number;
  /** the contracted dimension */
  k: number;
}

export type Int8KernelKind = 'probe' | 'direct' | 'staged';

export interface Int8KernelSpec {
  kind: Int8KernelKind;
  /** accumulators per subgroup along M and N */
  tm: number;
  tn: number;
  /** subgroups per workgroup along M and N (1 and 1 unless staged) */
  sy: number;
  sx: number;
  /** bytes of K per workgroup-memory slice (staged) */
  bk: number;
  /** workgroup-memory buffers for slices (1 or 2) */
  stages: 1 | 2;
  /** slices read from storage into registers ahead of the multiply (default stages − 1) */
  ahead?: 0 | 1 | 2;
  /** stages 2: unroll the slice loop by 2 (constant buffer offsets and register sets) */
  unroll?: boolean;
  /** bytes added to each workgroup-memory row (a multiple of 16) */
  pad: number;
  /** tile rows per group of the workgroup order (0: row by row) */
  group: number;
  /** the subgroup's index: the `subgroup_id` builtin or local_invocation_index / 32 */
  sgid: 'builtin' | 'index';
  /** the fragment shape's N (the adapter lists 16 and 8 for i8) */
  fragN: number;
  /**
   * Split precision in one kernel (staged only): A and B come as two int8 slices each (hi, lo), a
   * workgroup-memory row holds a slice's hi bytes then its lo bytes, and each subgroup keeps two
   * accumulator sets: C = hi·hi and C2 = hi·lo + lo·hi (the three products of the split product,
   * each operand slice read from storage once instead of twice).
   */
  split?: boolean;
  /**
   * Staged only: workgroup memory as one block per subgroup row of A (and column of B), nested
   * arrays `array<array<i32, W>, stages·sy>`, so that every fragment load reads `&As[block]` at
   * a constant offset with a constant stride. Dawn's robustness (Tint's IR Robustness transform)
   * then proves each load in bounds at compile time instead of wrapping it in a run-time branch
   * (it predicates a subgroup-matrix load unless array length, offset and stride are constants).
   */
  blocks?: boolean;
}

export interface Int8KernelPlan {
  threads: number;
  /** the workgroup's tile of C */
  bm: number;
  bn: number;
  /** K consumed per step of the outer loop */
  bk: number;
  /** K must be a multiple of this (bk, or 2·bk when the slice loop is unrolled by 2) */
  kMultiple: number;
  /** bytes per workgroup-memory row (bk + pad) */
  lds: number;
  /** bytes of workgroup memory */
  smemBytes: number;
  /** vec4<u32> loads of A and of B per thread per slice (staged), and whether the last is partial */
  aLoads: number;
  bLoads: number;
  aGuard: boolean;
  bGuard: boolean;
}

export interface Int8WgslOptions {
  frag: MatrixShape;
  /** 1: offsets in int8 elements (the extension's definition); 4: in i32 words */
  offsetDiv?: 1 | 4;
  emulate?: boolean;
  /** lanes per subgroup: 32 (the subgroup matrices' subgroup size on NVIDIA) */
  subgroupSize?: number;
}

const SUBGROUP = 32;

export const defaultSpec: Int8KernelSpec = {
  kind: 'staged',
  tm: 4,
  tn: 4,
  sy: 2,
  sx: 2,
  bk: 64,
  stages: 2,
  pad: 16,
  group: 8,
  sgid: 'builtin',
  fragN: 16,
};

export function spec(over: Partial<Int8KernelSpec>): Int8KernelSpec {
  const s = { ...defaultSpec, ...over };
  if (s.kind !== 'staged') return { ...s, sy: 1, sx: 1, stages: 1, pad: 0 };
  return s;
}

/** Slices a staged kernel reads into registers ahead of the multiply. */
export function int8Ahead(s: Int8KernelSpec): number {
  return s.ahead ?? s.stages - 1;
}

/**
 * The plugin's kernel (EdkmInt8MatMul): 128×128 tiles over 4 subgroups of 64×64 (4×4
 * accumulators each), 64-byte K slices, the next slice read into registers while the current one is
 * multiplied, workgroup memory in per-subgroup blocks (`blocks`: every fragment load at a constant
 * offset, so that Dawn's robustness needs no run-time check around it). On the H200, exact, with
 * Dawn's robustness on (call s8-3, bench/results/h200-2026-12-04/int8-sweep-*-s8-*.json): 520.4 TOPS
 * at 8192³ and 523.1 at 2048×4096×11008 against the previous default's 377.2 / 374.8 (8 subgroups
 * of 16×128, 128-byte slices, flat workgroup arrays: each fragment load wrapped in a bounds check);
 * without robustness 525.5 / 518.0. The same tile with flat arrays and 128-byte slices gave
 * 114–144 (round 4); blocks of 8 subgroups 4×2 of 64×64 497.7.
 */
export const INT8_MATMUL_SPEC: Int8KernelSpec = spec({
  stages: 1,
  bk: 64,
  ahead: 1,
  sy: 2,
  sx: 2,
  tm: 4,
  tn: 4,
  group: 16,
  blocks: true,
});

/**
 * The plugin's kernel where the user turned Dawn's robustness off (`EDKM_DAWN_FLAGS=
 * enable-dawn-features=disable_robustness`, beside EDKM_WEBGPU_UNSAFE=1): the same as
 * INT8_MATMUL_SPEC since its constant-offset blocks made robustness nearly free (525.5 TOPS at
 * 8192³ without, 520.4 with, call s8-3). Until then the unrobust tile differed (8 subgroups of
 * 32×128: 483.2 without robustness, 370 with, call s7-8); kept as its own choice for adapters where
 * the two differ.
 */
export const INT8_MATMUL_SPEC_UNROBUST: Int8KernelSpec = INT8_MATMUL_SPEC;

/** A short unique name: kind, subgroups, accumulators (n8: 16×8 fragments), slice, pad, ... */
export function specName(s: Int8KernelSpec): string {
  const f = `${s.tm}x${s.tn}${s.fragN === 8 ? 'n8' : ''}`;
  const g = s.group ? `-g${s.group}` : '';
  if (s.kind === 'probe') return 'probe';
  if (s.kind === 'direct') return `direct-${f}${g}`;
  const idx = s.sgid === 'index' ? '-idx' : '';
  const ahead = int8Ahead(s) !== s.stages - 1 ? `-a${int8Ahead(s)}` : '';
  const unroll = s.unroll ? '-u' : '';
  const split = s.split ? '-split' : '';
  const blk = s.blocks ? '-blk' : '';
  return `staged${s.stages}-${s.sy}x${s.sx}sg-${f}-k${s.bk}-p${s.pad}${g}${idx}${ahead}${unroll}${split}${blk}`;
}

/** Tile sizes and workgroup-memory use; throws on a spec that cannot be generated. */
export function planInt8Kernel(
  s: Int8KernelSpec,
  frag: MatrixShape,
  sg = SUBGROUP,
): Int8KernelPlan {
  const ints = [s.tm, s.tn, s.sy, s.sx];
  if (ints.some((v) => !Number.isInteger(v) || v < 1))
    throw new Error(`${specName(s)}: tm, tn, sy, sx must be positive integers`);
  if (frag.n !== s.fragN)
    throw new Error(`${specName(s)}: fragment N ${frag.n} is not the spec's ${s.fragN}`);
  if (frag.k % 4 !== 0) throw new Error(`fragment K ${frag.k} is not a multiple of 4`);
  if ((frag.m * frag.n) % sg !== 0)
    throw new Error(`a ${frag.m}×${frag.n} result does not spread over ${sg} lanes`);
  if (s.split && s.kind !== 'staged') throw new Error(`${specName(s)}: split needs staging`);
  if (s.blocks && s.kind !== 'staged') throw new Error(`${specName(s)}: blocks need staging`);
  const threads = s.sy * s.sx * sg;
  const bm = s.sy * s.tm * frag.m;
  const bn = s.sx * s.tn * frag.n;
  if (s.kind !== 'staged')
    return { threads, bm, bn, bk: frag.k, kMultiple: frag.k, lds: 0, smemBytes: 0, ...noLoads };
  if (s.bk % frag.k !== 0 || s.bk % 16 !== 0)
    throw new Error(`${specName(s)}: bk ${s.bk} is not a multiple of ${frag.k} and 16`);
  if (s.pad % 16 !== 0 || s.pad < 0)
    throw new Error(`${specName(s)}: pad ${s.pad} is not a multiple of 16`);
  const ahead = int8Ahead(s);
  if (s.stages !== 1 && s.stages !== 2)
    throw new Error(`${specName(s)}: stages ${s.stages} is not 1 or 2`);
  if (ahead < 0 || ahead > s.stages || (ahead === 2 && !s.unroll))
    throw new Error(
      `${specName(s)}: ahead ${ahead} with ${s.stages} buffer(s)${s.unroll ? '' : ', not unrolled'}`,
    );
  if (s.unroll && s.stages !== 2) throw new Error(`${specName(s)}: unroll needs 2 buffers`);
  // split: a row holds the slice's hi bytes, then its lo bytes
  const lds = (s.split ? 2 : 1) * s.bk + s.pad;
  const smemBytes = s.stages * (bm + bn) * lds;
  const aVec = (bm * s.bk) / 16;
  const bVec = (bn * s.bk) / 16;
  return {
    threads,
    bm,
    bn,
    bk: s.bk,
    kMultiple: s.unroll ? 2 * s.bk : s.bk,
    lds,
    smemBytes,
    aLoads: Math.ceil(aVec / threads),
    bLoads: Math.ceil(bVec / threads),
    aGuard: aVec % threads !== 0,
    bGuard: bVec % threads !== 0,
  };
}
const noLoads = { aLoads: 0, bLoads: 0, aGuard: false, bGuard: false };

/** Why a kernel cannot run an M×N×K product (it handles only whole tiles), or undefined. */
export function int8ShapeMisfit(
  p: Int8KernelPlan,
  m: number,
  n: number,
  k: number,
): string | undefined {
  const why: string[] = [];
  if (m % p.bm) why.push(`M ${m} is not a multiple of the tile's ${p.bm}`);
  if (n % p.bn) why.push(`N ${n} is not a multiple of the tile's ${p.bn}`);
  if (k % p.bk) why.push(`K ${k} is not a multiple of the slice's ${p.bk}`);
  else if (k % p.kMultiple) why.push(`K ${k} is not a multiple of two slices (${p.kMultiple})`);
  if (k % 16) why.push(`K ${k} is not a multiple of 16`);
  return why.length ? why.join('; ') : undefined;
}

/** The workgroup grid for an M×N product: (tiles along N, tiles along M). */
export function int8Grid(p: Int8KernelPlan, m: number, n: number): [number, number] {
  return [n / p.bn, m / p.bm];
}

export { groupedTile } from './tile-order';

/** The uniform block the kernels read: M, N, K, tilesM, tilesN, K / bk (and padding). */
export function int8Dims(p: Int8KernelPlan, m: number, n: number, k: number): Uint32Array {
  return new Uint32Array([m, n, k, m / p.bm, n / p.bn, k / p.bk, 0, 0]);
}

/** The WGSL of one kernel (entry point `main`, bindings A, B, C, dims). */
export function int8GemmWgsl(s: Int8KernelSpec, o: Int8WgslOptions): string {
  const frag = o.frag;
  const sg = o.subgroupSize ?? SUBGROUP;
  const p = planInt8Kernel(s, frag, sg);
  const emu = !!o.emulate;
  const div = o.offsetDiv ?? 1;
  const { m: FM, n: FN, k: FK } = frag;
  const u = (v: number) => `${v}u`;
  const off = (e: string) => (div === 4 ? `(${e}) / 4u` : e);
  // fragment sources, for the emulation's byte reads
  const srcId: Record<string, number> = { A: 0, B: 1, As: 2, Bs: 3 };
  // blocks: words per block of As and Bs (a subgroup row's A rows, a subgroup column's B rows)
  const blockWords: Record<string, number> = {
    As: (s.tm * FM * p.lds) / 4,
    Bs: (s.tn * FN * p.lds) / 4,
  };
  // a fragment from `arr` at offset e, or from block `blk` of `arr` at e (the emulation reads a
  // flat offset); L fragments row-major, R column-major
  const load =
    (kind: 'L' | 'R'): Load =>
    (arr, e, stride, blk) => {
      const ptr = blk === undefined ? `&${arr}` : `&${arr}[${blk}]`;
      const flat = blk === undefined ? e : `${blk} * ${blockWords[arr] * 4}u + ${e}`;
      return emu
        ? `${kind}(${srcId[arr]}u, ${flat}, ${stride})`
        : `subgroupMatrixLoad<${kind}>(${ptr}, ${off(e)}, ${kind === 'R'}, ${stride})`;
    };
  const loadL = load('L');
  const loadR = load('R');
  const mma = (a: string, b: string, c: string) =>
    emu ? `mma(${a}, ${b}, ${c})` : `subgroupMatrixMultiplyAccumulate(${a}, ${b}, ${c})`;
  const store = (e: string, c: string, stride: string, to = 'C') =>
    emu
      ? `store${to}(${e}, ${c}, ${stride});`
      : `subgroupMatrixStore(&${to}, ${e}, ${c}, false, ${stride});`;

  const staged = s.kind === 'staged';
  const useBuiltin = staged && s.sgid === 'builtin' && !emu && s.sy * s.sx > 1;
  const head: string[] = [];
  if (!emu) {
    head.push(
      useBuiltin
        ? 'enable chromium_experimental_subgroup_matrix, subgroups;'
        : 'enable chromium_experimental_subgroup_matrix;',
      'diagnostic(off, chromium_experimental.subgroup_matrix_uniformity);',
    );
  }
  head.push(
    '// C = A·Bᵀ, int8 × int8 → int32',
    'struct Dims { M: u32, N: u32, K: u32, tilesM: u32, tilesN: u32, kTiles: u32, p0: u32, p1: u32 }',
  );
  const word = staged ? 'vec4<u32>' : 'i32';
  if (s.split)
    head.push(
      '// split: A = (A, Alo) and B = (B, Blo) two int8 slices each; C = hi·hi, C2 = hi·lo + lo·hi',
      `@group(0) @binding(0) var<storage, read> A: array<${word}>; // M×K int8 (hi), row-major`,
      `@group(0) @binding(1) var<storage, read> Alo: array<${word}>; // M×K int8 (lo)`,
      `@group(0) @binding(2) var<storage, read> B: array<${word}>; // N×K int8 (hi), row-major (Bᵀ)`,
      `@group(0) @binding(3) var<storage, read> Blo: array<${word}>; // N×K int8 (lo)`,
      '@group(0) @binding(4) var<storage, read_write> C: array<i32>; // M×N int32',
      '@group(0) @binding(5) var<storage, read_write> C2: array<i32>; // M×N int32',
      '@group(0) @binding(6) var<uniform> dims: Dims;',
    );
  else
    head.push(
      `@group(0) @binding(0) var<storage, read> A: array<${word}>; // M×K int8, row-major`,
      `@group(0) @binding(1) var<storage, read> B: array<${word}>; // N×K int8, row-major (Bᵀ)`,
      '@group(0) @binding(2) var<storage, read_write> C: array<i32>; // M×N int32',
      '@group(0) @binding(3) var<uniform> dims: Dims;',
    );
  if (staged && s.blocks) {
    head.push(
      `var<workgroup> As: array<array<i32, ${blockWords.As}>, ${s.stages * s.sy}>; // ${s.stages} × ${s.sy} blocks of ${s.tm * FM} rows × ${p.lds} bytes`,
      `var<workgroup> Bs: array<array<i32, ${blockWords.Bs}>, ${s.stages * s.sx}>; // ${s.stages} × ${s.sx} blocks of ${s.tn * FN} rows × ${p.lds} bytes`,
    );
  } else if (staged) {
    head.push(
      `var<workgroup> As: array<i32, ${(s.stages * p.bm * p.lds) / 4}>; // ${s.stages} × ${p.bm} rows × ${p.lds} bytes`,
      `var<workgroup> Bs: array<i32, ${(s.stages * p.bn * p.lds) / 4}>; // ${s.stages} × ${p.bn} rows × ${p.lds} bytes`,
    );
  }
  if (emu)
    head.push(
      emulation(
        frag,
        sg,
        staged ? ['As', 'Bs'] : ['A', 'B'],
        !!s.split,
        staged && s.blocks ? blockWords : undefined,
      ),
    );
  else
    head.push(
      `alias L = subgroup_matrix_left<i8, ${FK}, ${FM}>;`,
      `alias R = subgroup_matrix_right<i8, ${FN}, ${FK}>;`,
      `alias Acc = subgroup_matrix_result<i32, ${FN}, ${FM}>;`,
    );

  const args = ['@builtin(workgroup_id) wg: vec3u', '@builtin(local_invocation_index) li: u32'];
  if (useBuiltin) args.push('@builtin(subgroup_id) sgid: u32');
  const body: string[] = [];
  if (emu) body.push(`lane = li % ${u(sg)};`);
  body.push('let K = dims.K;', 'let N = dims.N;');
  if (s.group) {
    body.push(
      '// grouped tile order (L2 reuse): groups of tile rows, column by column inside a group',
      'let pid = wg.y * dims.tilesN + wg.x;',
      ...groupedTileWgsl(s.group, 'pid', 'dims.tilesM', 'dims.tilesN', 'u32'),
    );
  } else body.push('let tileM = wg.y;', 'let tileN = wg.x;');
  body.push(`let row0 = tileM * ${u(p.bm)};`, `let col0 = tileN * ${u(p.bn)};`);

  if (s.kind === 'probe') body.push(...probeBody(s, frag, loadL, loadR, mma, store));
  else if (s.kind === 'direct') body.push(...directBody(s, frag, loadL, loadR, mma, store));
  else body.push(...stagedBody(s, p, frag, sg, useBuiltin, loadL, loadR, mma, store));

  return `${head.join('\n')}

@compute @workgroup_size(${p.threads})
fn main(${args.join(', ')}) {
${body.map((l) => `  ${l}`).join('\n')}
}
`;
}

/** A fragment load from `arr` at element offset `e`, or from its block `blk` (blocks kernels). */
type Load = (arr: string, e: string, stride: string, blk?: string) => string;
type Mma = (a: string, b: string, c: string) => string;
type Store = (e: string, c: string, stride: string, to?: string) => string;

/** The probe's kernel as it is: arrays of fragments, rolled loops. */
function probeBody(
  s: Int8KernelSpec,
  f: MatrixShape,
  loadL: Load,
  loadR: Load,
  mma: Mma,
  store: Store,
) {
  const { tm: TM, tn: TN } = s;
  return [
    `var acc: array<Acc, ${TM * TN}>;`,
    `for (var k = 0u; k < K; k += ${f.k}u) {`,
    `  var a: array<L, ${TM}>;`,
    `  for (var i = 0u; i < ${TM}u; i++) { a[i] = ${loadL('A', `(row0 + i * ${f.m}u) * K + k`, 'K')}; }`,
    `  for (var j = 0u; j < ${TN}u; j++) {`,
    `    let b = ${loadR('B', `(col0 + j * ${f.n}u) * K + k`, 'K')};`,
    `    for (var i = 0u; i < ${TM}u; i++) { acc[i * ${TN}u + j] = ${mma('a[i]', 'b', `acc[i * ${TN}u + j]`)}; }`,
    '  }',
    '}',
    `for (var i = 0u; i < ${TM}u; i++) {`,
    `  for (var j = 0u; j < ${TN}u; j++) {`,
    `    ${store(`(row0 + i * ${f.m}u) * N + col0 + j * ${f.n}u`, `acc[i * ${TN}u + j]`, 'N')}`,
    '  }',
    '}',
  ];
}

function accDecls(tm: number, tn: number, name = 'c'): string[] {
  const out: string[] = [];
  for (let i = 0; i < tm; i++)
    out.push(Array.from({ length: tn }, (_, j) => `var ${name}${i}_${j}: Acc;`).join(' '));
  return out;
}

/** One subgroup per workgroup, fragments from storage, every step unrolled. */
function directBody(
  s: Int8KernelSpec,
  f: MatrixShape,
  loadL: Load,
  loadR: Load,
  mma: Mma,
  store: Store,
) {
  const { tm: TM, tn: TN } = s;
  const out = [...accDecls(TM, TN), `for (var k = 0u; k < K; k += ${f.k}u) {`];
  for (let i = 0; i < TM; i++)
    out.push(`  let a${i} = ${loadL('A', `(row0 + ${i * f.m}u) * K + k`, 'K')};`);
  for (let j = 0; j < TN; j++) {
    out.push(`  let b${j} = ${loadR('B', `(col0 + ${j * f.n}u) * K + k`, 'K')};`);
    for (let i = 0; i < TM; i++) out.push(`  c${i}_${j} = ${mma(`a${i}`, `b${j}`, `c${i}_${j}`)};`);
  }
  out.push('}');
  for (let i = 0; i < TM; i++)
    for (let j = 0; j < TN; j++)
      out.push(store(`(row0 + ${i * f.m}u) * N + col0 + ${j * f.n}u`, `c${i}_${j}`, 'N'));
  return out;
}

/** Several subgroups per workgroup sharing A and B slices staged in workgroup memory. */
function stagedBody(
  s: Int8KernelSpec,
  p: Int8KernelPlan,
  f: MatrixShape,
  sg: number,
  useBuiltin: boolean,
  loadL: Load,
  loadR: Load,
  mma: Mma,
  store: Store,
) {
  const { tm: TM, tn: TN, sx: SX, sy: SY } = s;
  const T = p.threads;
  const blocks = !!s.blocks;
  const q = p.bk / 16; // vec4s per row of a slice
  const aStage = (p.bm * p.lds) / 4; // i32 words per stage
  const bStage = (p.bn * p.lds) / 4;
  const out: string[] = [];
  out.push(
    useBuiltin
      ? 'let sgi = sgid; // this subgroup within the workgroup'
      : `let sgi = li / ${sg}u; // this subgroup within the workgroup`,
    `let wy = sgi / ${SX}u;`,
    `let wx = sgi % ${SX}u;`,
    ...(blocks
      ? []
      : [
          `let aSub = wy * ${TM * f.m * p.lds}u; // byte offset of this subgroup's A rows in a slice`,
          `let bSub = wx * ${TN * f.n * p.lds}u;`,
        ]),
    'let kq = K / 16u; // vec4s per row of A and B',
  );
  // each thread's share of the copies: fixed rows and columns, computed once
  // (blocks: the block of the thread's row and the word within the block)
  const copies = (name: 'a' | 'b', loads: number, origin: string) => {
    const rows = name === 'a' ? TM * f.m : TN * f.n; // rows per block
    for (let c = 0; c < loads; c++) {
      const v = `${name}v${c}`;
      out.push(
        `let ${v} = li + ${c * T}u;`,
        `let ${name}g${c} = (${origin} + ${v} / ${q}u) * kq + ${v} % ${q}u; // vec4 index in ${name === 'a' ? 'A' : 'B'}`,
        blocks
          ? `let ${name}k${c} = ${v} / ${q * rows}u; let ${name}s${c} = ((${v} / ${q}u) % ${rows}u) * ${p.lds / 4}u + (${v} % ${q}u) * 4u; // block and word in ${name === 'a' ? 'As' : 'Bs'}`
          : `let ${name}s${c} = (${v} / ${q}u) * ${p.lds / 4}u + (${v} % ${q}u) * 4u; // word in ${name === 'a' ? 'As' : 'Bs'}`,
      );
    }
  };
  copies('a', p.aLoads, 'row0');
  copies('b', p.bLoads, 'col0');
  out.push(...accDecls(TM, TN));
  if (s.split) out.push(...accDecls(TM, TN, 'd'));
  // the copies of a slice: each operand slice's registers, source and place in a workgroup row
  // (split: the lo slice after the hi one, bk bytes in, with the same thread mapping)
  // (per: words per buffer, or blocks per buffer with blocks)
  const operands: {
    name: 'a' | 'b';
    reg: string;
    src: string;
    dst: string;
    per: number;
    at: number;
  }[] = [
    { name: 'a', reg: 'a', src: 'A', dst: 'As', per: blocks ? SY : aStage, at: 0 },
    { name: 'b', reg: 'b', src: 'B', dst: 'Bs', per: blocks ? SX : bStage, at: 0 },
  ];
  if (s.split)
    operands.push(
      { name: 'a', reg: 'al', src: 'Alo', dst: 'As', per: blocks ? SY : aStage, at: p.bk / 4 },
      { name: 'b', reg: 'bl', src: 'Blo', dst: 'Bs', per: blocks ? SX : bStage, at: p.bk / 4 },
    );
  const loadsOf = (name: 'a' | 'b') => (name === 'a' ? p.aLoads : p.bLoads);
  const guard = (name: 'a' | 'b', c: number) => {
    const total = ((name === 'a' ? p.bm : p.bn) * p.bk) / 16;
    const last = c === (name === 'a' ? p.aLoads : p.bLoads) - 1;
    return (name === 'a' ? p.aGuard : p.bGuard) && last ? `${name}v${c} < ${total}u` : '';
  };
  // global → registers (set 0 or 1) for slice `t`
  const reg = (name: string, c: number, set: number) => `r${name}${c}${set ? '_1' : ''}`;
  const gload = (t: string, set = 0) => {
    const l: string[] = [];
    for (const o of operands)
      for (let c = 0; c < loadsOf(o.name); c++) {
        const g = guard(o.name, c);
        const st = `${reg(o.reg, c, set)} = ${o.src}[${o.name}g${c} + ${t} * ${q}u];`;
        l.push(g ? `if (${g}) { ${st} }` : st);
      }
    return l;
  };
  // a buffer's offset: a constant (0, 1) or a WGSL expression
  const stageOff = (st: string | number, per: number) =>
    typeof st === 'number'
      ? st
        ? `${st * per}u + `
        : ''
      : st === '0u'
        ? ''
        : `${st} * ${per}u + `;
  // registers (set) → workgroup-memory buffer `st`
  const sstore = (st: string | number, set = 0) => {
    const l: string[] = [];
    for (const { name, reg: r, dst, per, at } of operands)
      for (let c = 0; c < loadsOf(name); c++) {
        const g = guard(name, c);
        const w = `${r}w${c}`;
        const word = (e: number) => `${w}${e ? ` + ${e}u` : ''}`;
        const stmt = [
          blocks
            ? `let ${w} = ${name}s${c}${at ? ` + ${at}u` : ''}; let ${r}k${c}_ = ${stageOff(st, per)}${name}k${c};`
            : `let ${w} = ${stageOff(st, per)}${name}s${c}${at ? ` + ${at}u` : ''};`,
          ...['x', 'y', 'z', 'w'].map(
            (comp, e) =>
              `${dst}[${blocks ? `${r}k${c}_][` : ''}${word(e)}] = bitcast<i32>(${reg(r, c, set)}.${comp});`,
          ),
        ].join(' ');
        l.push(g ? `if (${g}) { ${stmt} }` : `{ ${stmt} }`);
      }
    return l;
  };
  // fragments of workgroup-memory buffer `st` → accumulators
  const compute = (st: string | number) => {
    const l: string[] = [];
    // a fragment of As / Bs at byte `e` of this subgroup's rows: constant offsets with blocks
    const fa = (load: Load, e: number) =>
      blocks ? load('As', `${e}u`, `${p.lds}u`, 'aK') : load('As', `aB + ${e}u`, `${p.lds}u`);
    const fb = (load: Load, e: number) =>
      blocks ? load('Bs', `${e}u`, `${p.lds}u`, 'bK') : load('Bs', `bB + ${e}u`, `${p.lds}u`);
    l.push(
      ...(blocks
        ? [`let aK = ${stageOff(st, SY)}wy;`, `let bK = ${stageOff(st, SX)}wx;`]
        : [
            `let aB = ${stageOff(st, aStage * 4)}aSub;`,
            `let bB = ${stageOff(st, bStage * 4)}bSub;`,
          ]),
    );
    if (s.split) {
      // hi fragments at k, lo fragments bk bytes further: C += hi·hi, C2 += hi·lo + lo·hi
      for (let kk = 0; kk < p.bk / f.k; kk++) {
        const ka = (i: number, lo: boolean) => i * f.m * p.lds + kk * f.k + (lo ? p.bk : 0);
        const kb = (j: number, lo: boolean) => j * f.n * p.lds + kk * f.k + (lo ? p.bk : 0);
        for (let i = 0; i < TM; i++)
          l.push(
            `let a${kk}_${i} = ${fa(loadL, ka(i, false))};`,
            `let al${kk}_${i} = ${fa(loadL, ka(i, true))};`,
          );
        for (let j = 0; j < TN; j++) {
          l.push(
            `let b${kk}_${j} = ${fb(loadR, kb(j, false))};`,
            `let bl${kk}_${j} = ${fb(loadR, kb(j, true))};`,
          );
          for (let i = 0; i < TM; i++)
            l.push(
              `c${i}_${j} = ${mma(`a${kk}_${i}`, `b${kk}_${j}`, `c${i}_${j}`)};`,
              `d${i}_${j} = ${mma(`a${kk}_${i}`, `bl${kk}_${j}`, `d${i}_${j}`)};`,
              `d${i}_${j} = ${mma(`al${kk}_${i}`, `b${kk}_${j}`, `d${i}_${j}`)};`,
            );
        }
      }
      return l;
    }
    for (let kk = 0; kk < p.bk / f.k; kk++) {
      for (let i = 0; i < TM; i++)
        l.push(`let a${kk}_${i} = ${fa(loadL, i * f.m * p.lds + kk * f.k)};`);
      for (let j = 0; j < TN; j++) {
        l.push(`let b${kk}_${j} = ${fb(loadR, j * f.n * p.lds + kk * f.k)};`);
        for (let i = 0; i < TM; i++)
          l.push(`c${i}_${j} = ${mma(`a${kk}_${i}`, `b${kk}_${j}`, `c${i}_${j}`)};`);
      }
    }
    return l;
  };
  const ahead = int8Ahead(s);
  const regs: string[] = [];
  for (let set = 0; set < Math.max(1, ahead); set++) {
    for (const o of operands)
      for (let c = 0; c < loadsOf(o.name); c++) regs.push(`var ${reg(o.reg, c, set)}: vec4<u32>;`);
  }
  out.push(regs.join(' '));
  const ind = (l: string[], n = 1) => l.map((x) => `${'  '.repeat(n)}${x}`);
  const KT = 'dims.kTiles';
  const barrier = 'workgroupBarrier();';
  if (s.unroll) {
    // two buffers, the loop unrolled by 2 (kTiles is even): buffer `par` and register sets constant
    if (ahead >= 1) out.push(...gload('0u'), ...sstore(0));
    if (ahead === 2) out.push(`if (${KT} > 1u) {`, ...ind(gload('1u', 1)), '}');
    if (ahead >= 1) out.push(barrier);
    const iter = (tt: string, par: number): string[] => {
      if (ahead === 0) return [...gload(tt), ...sstore(par), barrier, ...compute(par)];
      if (ahead === 1)
        return [
          `let more = ${tt} + 1u < ${KT};`,
          'if (more) {',
          ...ind(gload(`(${tt} + 1u)`)),
          '}',
          ...compute(par),
          'if (more) {',
          ...ind(sstore(1 - par)),
          '}',
          barrier,
        ];
      return [
        `if (${tt} + 2u < ${KT}) {`,
        ...ind(gload(`(${tt} + 2u)`, par)),
        '}',
        ...compute(par),
        `if (${tt} + 1u < ${KT}) {`,
        ...ind(sstore(1 - par, 1 - par)),
        '}',
        barrier,
      ];
    };
    out.push(
      `for (var t = 0u; t < ${KT}; t += 2u) {`,
      '  {',
      ...ind(iter('t', 0), 2),
      '  }',
      '  {',
      ...ind(iter('(t + 1u)', 1), 2),
      '  }',
      '}',
    );
  } else if (s.stages === 1 && ahead === 0) {
    out.push(
      `for (var t = 0u; t < ${KT}; t++) {`,
      ...ind(gload('t')),
      ...ind(sstore('0u')),
      `  ${barrier}`,
      ...ind(compute('0u')),
      `  ${barrier}`,
      '}',
    );
  } else if (s.stages === 1) {
    // the next slice into registers during the multiply; one buffer, two barriers
    out.push(
      ...gload('0u'),
      ...sstore('0u'),
      barrier,
      `for (var t = 0u; t < ${KT}; t++) {`,
      `  let more = t + 1u < ${KT};`,
      '  if (more) {',
      ...ind(gload('(t + 1u)'), 2),
      '  }',
      ...ind(compute('0u')),
      `  ${barrier}`,
      '  if (more) {',
      ...ind(sstore('0u'), 2),
      '  }',
      `  ${barrier}`,
      '}',
    );
  } else if (ahead === 0) {
    // two buffers, no prefetch: copy into buffer t % 2, one barrier per slice
    out.push(
      `for (var t = 0u; t < ${KT}; t++) {`,
      '  let cur = t & 1u;',
      ...ind(gload('t')),
      ...ind(sstore('cur')),
      `  ${barrier}`,
      ...ind(compute('cur')),
      '}',
    );
  } else {
    out.push(
      ...gload('0u'),
      ...sstore('0u'),
      barrier,
      `for (var t = 0u; t < ${KT}; t++) {`,
      '  let cur = t & 1u;',
      `  let more = t + 1u < ${KT};`,
      '  if (more) {',
      ...ind(gload('(t + 1u)'), 2),
      '  }',
      ...ind(compute('cur')),
      '  if (more) {',
      ...ind(sstore('(1u - cur)'), 2),
      '  }',
      `  ${barrier}`,
      '}',
    );
  }
  const r0 = `row0 + wy * ${TM * f.m}u`;
  const c0 = `col0 + wx * ${TN * f.n}u`;
  out.push(`let cr = ${r0};`, `let cc = ${c0};`);
  for (let i = 0; i < TM; i++)
    for (let j = 0; j < TN; j++) {
      out.push(store(`(cr + ${i * f.m}u) * N + cc + ${j * f.n}u`, `c${i}_${j}`, 'N'));
      if (s.split)
        out.push(store(`(cr + ${i * f.m}u) * N + cc + ${j * f.n}u`, `d${i}_${j}`, 'N', 'C2'));
    }
  return out;
}

/**
 * Plain-WGSL stand-ins for the subgroup-matrix types and calls: a fragment is where it lives, the
 * product reads the int8 values when it runs. Lane l holds result entries l, l + 32, ... (row-major).
 */
function emulation(
  f: MatrixShape,
  sg: number,
  sources: string[],
  split = false,
  blockWords?: Record<string, number>,
): string {
  const per = (f.m * f.n) / sg;
  const srcId: Record<string, number> = { A: 0, B: 1, As: 2, Bs: 3 };
  const word = (name: string) => {
    const bw = blockWords?.[name];
    return bw ? `${name}[(i / 4u) / ${bw}u][(i / 4u) % ${bw}u]` : `${name}[i / 4u]`;
  };
  const cases = sources.map((name) => `    case ${srcId[name]}u: { w = ${word(name)}; }`);
  return `// emulated subgroup matrices (no subgroup-matrix adapter): L is ${f.m}×${f.k} row-major, R is ${f.k}×${f.n} column-major
struct L { src: u32, off: u32, stride: u32 }
struct R { src: u32, off: u32, stride: u32 }
struct Acc { v: array<i32, ${per}> }
var<private> lane: u32;
fn byteAt(src: u32, i: u32) -> i32 {
  var w = 0i;
  switch src {
${cases.join('\n')}
    default: {}
  }
  return (w << (24u - 8u * (i % 4u))) >> 24u;
}
fn mma(a: L, b: R, c: Acc) -> Acc {
  var r = c;
  for (var e = 0u; e < ${per}u; e++) {
    let x = lane + ${sg}u * e;
    let row = x / ${f.n}u;
    let col = x % ${f.n}u;
    var s = 0i;
    for (var t = 0u; t < ${f.k}u; t++) {
      s += byteAt(a.src, a.off + row * a.stride + t) * byteAt(b.src, b.off + col * b.stride + t);
    }
    r.v[e] += s;
  }
  return r;
}
${(split ? ['C', 'C2'] : ['C'])
  .map(
    (to) => `fn store${to}(off: u32, c: Acc, stride: u32) {
  for (var e = 0u; e < ${per}u; e++) {
    let x = lane + ${sg}u * e;
    ${to}[off + (x / ${f.n}u) * stride + x % ${f.n}u] = c.v[e];
  }
}`,
  )
  .join('\n')}`;
}
