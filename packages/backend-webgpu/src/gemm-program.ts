import { EdkmProgram } from './programs/base';
import { groupedTileWgsl } from './tile-order';

/**
 * The tile shape of one GEMM workgroup: WX×WY threads, each computing a TM×TN block of the output
 * (TM, TN multiples of 4), so a workgroup computes a (WY·TM)×(WX·TN) tile, stepping through K by
 * BK (a multiple of 4).
 */
export interface GemmTile {
  tm: number;
  tn: number;
  wx: number;
  wy: number;
  bk: number;
  /**
   * Unroll the K-slice loop (default): the fastest code on GPUs, but shaders that a software
   * rasteriser (lavapipe) takes minutes to compile.
   */
  unroll?: boolean;
  /**
   * Workgroup order (Triton's grouped ordering): consecutive workgroups walk `group` rows of
   * tiles down before moving one tile right, so the workgroups resident at once share fewer
   * operand slices and more of them hit L2. 0 or absent: row by row (dispatch order).
   */
  group?: number;
  /**
   * 'block': the 32 threads of a warp cover 8 columns × 4 rows of thread blocks (CUTLASS's SIMT
   * warp arrangement: 4 A and 8 B vec4s per warp and K step from workgroup memory instead of 2
   * and 16), needs WX a multiple of 8, WY of 4. Absent: threads row by row (16 × 2 a warp).
   */
  lanes?: 'block';
  /**
   * false: no vec4 of padding on the workgroup-memory rows of a K-contiguous operand (A/B runs;
   * name suffix `n`). See gemmSource.
   */
  pad?: boolean;
}

/** What a GEMM program is specialised on (its WGSL depends on all of it). */
export interface GemmVariant {
  transposeA: boolean;
  transposeB: boolean;
  /** A's contiguous dimension (K, or M when transposed) is a multiple of 4: vec4 loads. */
  vecA: boolean;
  /** B's contiguous dimension (N, or K when transposed) is a multiple of 4. */
  vecB: boolean;
  /** N is a multiple of 4: vec4 stores. */
  vecOut: boolean;
  /** M, N not multiples of the tile, or K not a multiple of BK (or of a split's K chunk). */
  checkM: boolean;
  checkN: boolean;
  checkK: boolean;
}

/**
 * B as a stored weight [N, K] decoded as its tile is staged (the linear kernels' GEMM form,
 * kernels/linear-gemm.ts), plus `residual` at each output where asked:
 *  - 'palette' (PaletteMatMul): stored row o's weight k is lut[rows[2o + 1] · 2^bits + index] ·
 *    scales[o], its index `bits` wide at bit k · bits of the row's packed words (rows word-aligned:
 *    K a multiple of 32); output column rows[2o] (JLCM's permutation);
 *  - 'bf16' (Bf16MatMul): w holds the bf16 bits of row o two to a word, the lower half first.
 */
export type DecodedOperand =
  | { format: 'palette'; bits: number; residual: boolean }
  | { format: 'bf16'; residual: boolean };

/** TMxTNxWXxWYxBK, then `r` (rolled K loop), `g<group>`, `b` (block lanes), `n` (no padding): '8x8x16x16x8g8b'. */
export function gemmTileName(t: GemmTile): string {
  return `${t.tm}x${t.tn}x${t.wx}x${t.wy}x${t.bk}${t.unroll === false ? 'r' : ''}${t.group ? `g${t.group}` : ''}${t.lanes === 'block' ? 'b' : ''}${t.pad === false ? 'n' : ''}`;
}

/** The inverse of gemmTileName (undefined for a string that is not a tile name). */
export function parseGemmTile(s: string): GemmTile | undefined {
  const m = /^(\d+)x(\d+)x(\d+)x(\d+)x(\d+)(r?)(?:g(\d+))?(b?)(n?)$/.exec(s.trim());
  if (!m) return undefined;
  const [tm, tn, wx, wy, bk] = m.slice(1, 6).map(Number);
  const tile: GemmTile = { tm, tn, wx, wy, bk };
  if (m[6]) tile.unroll = false;
  if (m[7]) tile.group = Number(m[7]);
  if (m[8]) tile.lanes = 'block';
  if (m[9]) tile.pad = false;
  return tile;
}

export function gemmTileSize(t: GemmTile): { bm: number; bn: number; threads: number } {
  return { bm: t.wy * t.tm, bn: t.wx * t.tn, threads: t.wx * t.wy };
}

/**
 * Why a tile shape cannot be used on a device with these limits (undefined when it can). Tiles of
 * more than 256 threads need a device that allows them (WebGPU guarantees 256).
 */
export function gemmTileProblem(
  t: GemmTile,
  maxWorkgroupStorageBytes = 16384,
  maxThreads = 256,
): string | undefined {
  const { bm, bn, threads } = gemmTileSize(t);
  if (t.tm % 4 || t.tn % 4 || t.bk % 4 || t.tm < 4 || t.tn < 4 || t.bk < 4)
    return 'tm, tn and bk must be positive multiples of 4';
  if (threads > maxThreads) return `at most ${maxThreads} threads a workgroup (device)`;
  if (t.group !== undefined && !(Number.isInteger(t.group) && t.group >= 0 && t.group <= 64))
    return 'group must be an integer 0..64';
  if (t.lanes === 'block' && (t.wx % 8 || t.wy % 4 || threads % 32))
    return "lanes 'block' needs WX a multiple of 8, WY of 4";
  if ((bm * t.bk) % 4 || (bn * t.bk) % 4) return 'each tile must be whole vec4s';
  // (+ a vec4 a K row for each operand stored K-contiguous, unless `pad` is false)
  const bytes = 2 * 4 * t.bk * (bm + bn + (t.pad === false ? 0 : 8));
  if (bytes > maxWorkgroupStorageBytes)
    return `needs ${bytes} bytes of workgroup memory (device: ${maxWorkgroupStorageBytes})`;
  return undefined;
}

/** The uniforms of gemmSource's WGSL (GemmProgram and the linear kernels' GEMM form). */
export const GEMM_UNIFORMS =
  'M : i32, N : i32, K : i32, batch : i32, batchA : i32, batchB : i32, kChunk : i32, numTiles : i32,';

/** GEMM_UNIFORMS' values: K is consumed in chunks of kChunk (a multiple of bk) per split. */
export function gemmUniforms(
  d: { m: number; n: number; k: number; batch: number; batchA: number; batchB: number },
  kChunk: number,
  bk: number,
) {
  return [d.m, d.n, d.k, d.batch, d.batchA, d.batchB, kChunk, kChunk / bk].map((v) => ({
    type: 'int32',
    data: [v],
  }));
}

/**
 * C[z] = op(A)[z % batchA] · op(B)[z % batchB] for f32, register-tiled: each thread accumulates a
 * TM×TN block in registers from vec4 reads of two workgroup-memory tiles, which are double
 * buffered (the next K-slice is loaded from global memory into registers while the current one is
 * multiplied, then stored into the other buffer: one barrier per K-slice). Both tiles are kept
 * K-major (As[k][m], Bs[k][n]) so that the inner loop reads vec4s along M and N; operands stored
 * the other way round are transposed on the way in. Every index into workgroup memory is a
 * compile-time constant plus a thread-invariant value (the WGSL is generated fully unrolled, and a
 * thread's rows are TM/4 groups of 4 spaced WY·4 apart), so bounds clamps hoist out of the loop;
 * `unroll: false` keeps the K-slice loop rolled instead (for software rasterisers).
 *
 * With `splits` > 1 (split-K), z = split · batch + b and each split covers `kChunk` of K,
 * writing partial sums into [splits · batch, M, N] for GemmSplitSumProgram.
 *
 * Tiling after CUTLASS's SIMT GEMM (threadblock tile, per-thread outer products, staged shared
 * memory) and tfjs-webgpu's matmul_packed (the WebGPU program plumbing); written for this project.
 */
export class GemmProgram extends EdkmProgram {
  shaderKey: string;
  variableNames = ['A', 'B'];
  variableComponents: number[];
  outputComponent: number;
  uniforms = GEMM_UNIFORMS;

  constructor(
    outputShape: [number, number, number],
    dispatchZ: number,
    readonly tile: GemmTile,
    readonly variant: GemmVariant,
  ) {
    const { bm, bn } = gemmTileSize(tile);
    const [, m, n] = outputShape;
    super(outputShape, [Math.ceil(n / bn), Math.ceil(m / bm), dispatchZ], {
      x: [2],
      y: [1],
      z: [0],
    });
    this.workgroupSize = [tile.wx * tile.wy, 1, 1];
    this.variableComponents = [variant.vecA ? 4 : 1, variant.vecB ? 4 : 1];
    this.outputComponent = variant.vecOut ? 4 : 1;
    const v = variant;
    this.shaderKey = `edkm_gemm_${gemmTileName(tile)}_${[
      v.transposeA,
      v.transposeB,
      v.vecA,
      v.vecB,
      v.vecOut,
      v.checkM,
      v.checkN,
      v.checkK,
    ]
      .map(Number)
      .join('')}`;
  }

  getUserCode(): string {
    return gemmSource(this.tile, this.variant);
  }
}

/** `target = read` where every condition holds, zero elsewhere (no read out of bounds). */
function guarded(target: string, read: string, conds: string[], zero = 'vec4<f32>(0.0)'): string {
  if (!conds.length) return `${target} = ${read};`;
  return `if (${conds.join(' && ')}) { ${target} = ${read}; } else { ${target} = ${zero}; }`;
}

/**
 * The loads of one operand's tile into registers and their stores into workgroup memory.
 * `outer` is M for A, N for B; `contiguousOuter` says the operand is stored with its outer
 * dimension contiguous (A transposed, B not transposed): then a vec4 along the outer dimension
 * goes straight into the K-major tile; otherwise a vec4 along K is scattered over 4 K rows.
 */
function operandTile(
  name: 'A' | 'B',
  tileOuter: number,
  bk: number,
  threads: number,
  contiguousOuter: boolean,
  vec: boolean,
  checkOuter: boolean,
  checkK: boolean,
  /** K-contiguous only: the vec4 at outer index o, K index k (4 along K) instead of a read */
  read?: (o: string, k: string) => string,
): { decl: string; load: string; store: (array: string) => string } {
  const total = (tileOuter * bk) / 4; // vec4s of the tile
  const n = Math.ceil(total / threads); // vec4s a thread loads (the last round partly, see below)
  const outerDim = name === 'A' ? 'uniforms.M' : 'uniforms.N';
  const origin = name === 'A' ? 'm0' : 'n0';
  const base = name === 'A' ? 'aBase' : 'bBase';
  const reg = (r: number) => `${name.toLowerCase()}r${r}`;
  const decl: string[] = [];
  const load: string[] = [];
  const stores: ((array: string) => string)[] = [];
  for (let r = 0; r < n; r++) {
    decl.push(`var ${reg(r)} : vec4<f32>;`);
    // a tile of fewer vec4s than threads (or not a multiple of them): the last round's loads and
    // stores only in the threads that have one
    const partial = (r + 1) * threads > total;
    const open = partial ? `if (i32(localIndex) + ${r * threads} < ${total}) {` : '';
    const close = partial ? '}' : '';
    if (contiguousOuter) {
      // tile [bk][tileOuter/4] of vec4s along the outer dimension; element (k, o..o+3) of the
      // operand is at base + k·outer + o
      const per = tileOuter / 4;
      load.push(`${open} {
        let l = i32(localIndex) + ${r * threads};
        let kk = l / ${per};
        let oq = l - kk * ${per};
        let k = k0 + kk;
        let o = ${origin} + oq * 4;
        let at = ${base} + k * ${outerDim} + o;`);
      if (vec) {
        const conds = [checkK ? 'k < kEnd' : '', checkOuter ? `o < ${outerDim}` : ''].filter(
          Boolean,
        );
        load.push(guarded(reg(r), `${name}[at / 4]`, conds));
      } else {
        // scalar operand: each component on its own, bounds checked
        for (const [i, c] of ['x', 'y', 'z', 'w'].entries()) {
          const conds = [checkK ? 'k < kEnd' : '', `o + ${i} < ${outerDim}`].filter(Boolean);
          load.push(guarded(`${reg(r)}.${c}`, `${name}[at + ${i}]`, conds, '0.0'));
        }
      }
      load.push(`}${close}`);
      stores.push(
        (array) => `${open} {
        let l = i32(localIndex) + ${r * threads};
        let kk = l / ${per};
        ${array}[kk][l - kk * ${per}] = ${reg(r)};
      }${close}`,
      );
    } else {
      // stored K-contiguous: tile [tileOuter][bk/4] of vec4s along K, each scattered over 4 rows
      const per = bk / 4;
      load.push(`${open} {
        let l = i32(localIndex) + ${r * threads};
        let oo = l / ${per};
        let kq = l - oo * ${per};
        let k = k0 + kq * 4;
        let o = ${origin} + oo;
        let at = ${base} + o * uniforms.K + k;`);
      if (vec || read) {
        const conds = [checkK ? 'k < kEnd' : '', checkOuter ? `o < ${outerDim}` : ''].filter(
          Boolean,
        );
        load.push(guarded(reg(r), read ? read('o', 'k') : `${name}[at / 4]`, conds));
      } else {
        for (const [i, c] of ['x', 'y', 'z', 'w'].entries()) {
          const conds = [`k + ${i} < kEnd`, checkOuter ? `o < ${outerDim}` : ''].filter(Boolean);
          load.push(guarded(`${reg(r)}.${c}`, `${name}[at + ${i}]`, conds, '0.0'));
        }
      }
      load.push(`}${close}`);
      stores.push(
        (array) => `${open} {
        let l = i32(localIndex) + ${r * threads};
        let oo = l / ${per};
        let kk = (l - oo * ${per}) * 4;
        let oi = oo / 4;
        let oc = oo - oi * 4;
        ${array}[kk][oi][oc] = ${reg(r)}.x;
        ${array}[kk + 1][oi][oc] = ${reg(r)}.y;
        ${array}[kk + 2][oi][oc] = ${reg(r)}.z;
        ${array}[kk + 3][oi][oc] = ${reg(r)}.w;
      }${close}`,
      );
    }
  }
  return {
    decl: decl.join('\n'),
    load: load.join('\n'),
    store: (array) => stores.map((code) => code(array)).join('\n'),
  };
}

/** WGSL: the thread's column tx and row ty of thread blocks in the workgroup (GemmTile.lanes). */
function threadsAt(t: GemmTile): string {
  if (t.lanes !== 'block')
    return `let tx = i32(localIndex) % ${t.wx};\n      let ty = i32(localIndex) / ${t.wx};`;
  const across = t.wx / 8; // warps along a row of threads
  return `let lane = i32(localIndex) % 32;
      let warp = i32(localIndex) / 32;
      let tx = (warp % ${across}) * 8 + lane % 8;
      let ty = (warp / ${across}) * 4 + lane / 8;`;
}

/**
 * WGSL: the origin (m0, n0) of the workgroup's output tile. The dispatch is tiles along N × tiles
 * along M; with a group (GemmTile.group) in the grouped order of tile-order.ts.
 */
function tileAt(t: GemmTile): string {
  const { bm, bn } = gemmTileSize(t);
  if (!t.group)
    return `let m0 = i32(workgroupId.y) * ${bm};\n      let n0 = i32(workgroupId.x) * ${bn};`;
  return [
    'let pid = i32(workgroupId.y * numWorkgroups.x + workgroupId.x);',
    ...groupedTileWgsl(t.group, 'pid', 'i32(numWorkgroups.y)', 'i32(numWorkgroups.x)', 'i32'),
    `let m0 = tileM * ${bm};`,
    `let n0 = tileN * ${bn};`,
  ].join('\n      ');
}

export function gemmSource(tile: GemmTile, v: GemmVariant, decoded?: DecodedOperand): string {
  const { tm, tn, wx, wy, bk, unroll = true } = tile;
  const { bm, bn, threads } = gemmTileSize(tile);
  const gm = tm / 4; // row groups of 4 per thread
  const gn = tn / 4; // column vec4s per thread
  if (decoded && !v.transposeB) throw new Error('a decoded B is stored [N, K] (transposeB)');
  const aTile = operandTile('A', bm, bk, threads, v.transposeA, v.vecA, v.checkM, v.checkK);
  const bTile = operandTile(
    'B',
    bn,
    bk,
    threads,
    !v.transposeB,
    v.vecB,
    v.checkN,
    v.checkK,
    decoded ? (o, k) => `decode4(${o}, ${k})` : undefined,
  );
  const acc = (i: number, h: number) => `acc_${i}_${h}`;
  const lines: string[] = [];
  /** One K-slice's outer products from tiles `as`, `bs` (WGSL array references). */
  const compute = (as: string, bs: string) => {
    const step = (kk: string, tag: string) => {
      const out: string[] = [];
      for (let g = 0; g < gm; g++) out.push(`let a${g}${tag} = ${as}[${kk}][${g * wy} + ty];`);
      for (let h = 0; h < gn; h++) out.push(`let b${h}${tag} = ${bs}[${kk}][${h * wx} + tx];`);
      for (let g = 0; g < gm; g++)
        for (let i = 0; i < 4; i++)
          for (let h = 0; h < gn; h++) {
            const c = 'xyzw'[i];
            out.push(
              `${acc(g * 4 + i, h)} = fma(vec4<f32>(a${g}${tag}.${c}), b${h}${tag}, ${acc(g * 4 + i, h)});`,
            );
          }
      return out.join('\n');
    };
    if (!unroll) return `for (var kk = 0; kk < ${bk}; kk = kk + 1) {\n${step('kk', '')}\n}`;
    const out: string[] = [];
    for (let kk = 0; kk < bk; kk++) out.push(step(String(kk), `_${kk}`));
    return `{\n${out.join('\n')}\n}`;
  };
  for (let i = 0; i < tm; i++)
    for (let h = 0; h < gn; h++) lines.push(`var ${acc(i, h)} = vec4<f32>(0.0);`);
  const write: string[] = [];
  for (let g = 0; g < gm; g++)
    for (let i = 0; i < 4; i++)
      for (let h = 0; h < gn; h++) {
        const row = `m0 + ${g * wy * 4 + i} + ty * 4`;
        const col = `n0 + ${h * wx * 4} + tx * 4`;
        const value = acc(g * 4 + i, h);
        if (decoded) {
          // stored rows c..c + 3 to their output columns (palette: rows[2c], JLCM's permutation)
          const column = (e: number) =>
            decoded.format === 'palette' ? `rows[2 * (c + ${e})]` : `c + ${e}`;
          const cols = ['x', 'y', 'z', 'w'].map(
            (comp, e) => `if (c + ${e} < uniforms.N) {
                let at = r * uniforms.N + ${column(e)};
                result[at] = ${value}.${comp}${decoded.residual ? ' + residual[at]' : ''};
              }`,
          );
          write.push(`{
            let r = ${row};
            let c = ${col};
            if (r < uniforms.M) {
              ${cols.join('\n              ')}
            }
          }`);
        } else if (v.vecOut) {
          const store = `result[(cBase + (${row}) * uniforms.N + ${col}) / 4] = ${value};`;
          const conds = [
            v.checkM ? `${row} < uniforms.M` : '',
            v.checkN ? `${col} < uniforms.N` : '',
          ]
            .filter(Boolean)
            .join(' && ');
          write.push(conds ? `if (${conds}) { ${store} }` : store);
        } else {
          write.push(`{
            let r = ${row};
            let c = ${col};
            let at = cBase + r * uniforms.N + c;
            if (r < uniforms.M) {
              if (c < uniforms.N) { result[at] = ${value}.x; }
              if (c + 1 < uniforms.N) { result[at + 1] = ${value}.y; }
              if (c + 2 < uniforms.N) { result[at + 2] = ${value}.z; }
              if (c + 3 < uniforms.N) { result[at + 3] = ${value}.w; }
            }
          }`);
        }
      }
  // a K-contiguous operand is scattered over 4 K rows on its way in: one vec4 of padding a row
  // puts rows kk and kk + 4 16 banks apart, so the two threads of a warp writing the same column
  // of them no longer collide (2-way bank conflicts at K-slices of 8)
  const pad = tile.pad !== false;
  const tiles = (b: string) => `array<array<array<vec4<f32>, ${b}>, ${bk}>, 2>`;
  const loop = unroll
    ? // two copies of the step, one per buffer: every workgroup index is a constant plus a
      // thread-invariant value
      `loop {
        k0 = k0 + ${bk};
        if (t + 1 < uniforms.numTiles) {
          ${aTile.load}
          ${bTile.load}
        }
        ${compute('as_[0]', 'bs_[0]')}
        if (t + 1 >= uniforms.numTiles) { break; }
        ${aTile.store('as_[1]')}
        ${bTile.store('bs_[1]')}
        workgroupBarrier();
        t = t + 1;
        k0 = k0 + ${bk};
        if (t + 1 < uniforms.numTiles) {
          ${aTile.load}
          ${bTile.load}
        }
        ${compute('as_[1]', 'bs_[1]')}
        if (t + 1 >= uniforms.numTiles) { break; }
        ${aTile.store('as_[0]')}
        ${bTile.store('bs_[0]')}
        workgroupBarrier();
        t = t + 1;
      }`
    : // one copy (a short shader: quick to compile on a software rasteriser)
      `loop {
        k0 = k0 + ${bk};
        if (t + 1 < uniforms.numTiles) {
          ${aTile.load}
          ${bTile.load}
        }
        let cur = t & 1;
        ${compute('as_[cur]', 'bs_[cur]')}
        if (t + 1 >= uniforms.numTiles) { break; }
        ${aTile.store('as_[1 - cur]')}
        ${bTile.store('bs_[1 - cur]')}
        workgroupBarrier();
        t = t + 1;
      }`;
  const decode = !decoded
    ? ''
    : decoded.format === 'palette'
      ? paletteDecode(decoded.bits)
      : bf16Decode();
  return `${decode}
    var<workgroup> as_ : ${tiles(String(bm / 4 + (pad && !v.transposeA ? 1 : 0)))};
    var<workgroup> bs_ : ${tiles(String(bn / 4 + (pad && v.transposeB ? 1 : 0)))};

    fn main() {
      ${threadsAt(tile)}
      let z = i32(workgroupId.z);
      let batchIndex = z % uniforms.batch;
      let split = z / uniforms.batch;
      ${tileAt(tile)}
      let aBase = (batchIndex % uniforms.batchA) * uniforms.M * uniforms.K;
      let bBase = (batchIndex % uniforms.batchB) * uniforms.K * uniforms.N;
      let cBase = z * uniforms.M * uniforms.N;
      let kBegin = split * uniforms.kChunk;
      let kEnd = min(uniforms.K, kBegin + uniforms.kChunk);
      ${lines.join('\n')}
      ${aTile.decl}
      ${bTile.decl}
      var k0 = kBegin;
      ${aTile.load}
      ${bTile.load}
      ${aTile.store('as_[0]')}
      ${bTile.store('bs_[0]')}
      workgroupBarrier();
      var t = 0;
      ${loop}
      ${write.join('\n')}
    }`;
}

/**
 * WGSL `decode4(o, k)`: weights k..k + 3 of stored row o of a palettized B (DecodedOperand), the
 * 4·bits bits from one word or two, each LUT entry times the row's scale.
 */
function paletteDecode(bits: number): string {
  const mask = `${(1 << bits) - 1}u`;
  const field = (j: number) => `lut[at + i32(${j ? `(v >> ${j * bits}u)` : 'v'} & ${mask})]`;
  return `
    fn decode4(o : i32, k : i32) -> vec4<f32> {
      let bit = u32(k) * ${bits}u;
      let w = o * (uniforms.K / 32 * ${bits}) + i32(bit >> 5u);
      let sh = bit & 31u;
      var v = bitcast<u32>(codes[w]) >> sh;
      if (sh + ${4 * bits}u > 32u) { v = v | (bitcast<u32>(codes[w + 1]) << (32u - sh)); }
      let at = rows[2 * o + 1] * ${1 << bits};
      return scales[o] * vec4<f32>(${[0, 1, 2, 3].map(field).join(', ')});
    }`;
}

/** WGSL `decode4(o, k)`: weights k..k + 3 (k even) of row o of a bf16 B (DecodedOperand), two words. */
function bf16Decode(): string {
  return `
    fn decode4(o : i32, k : i32) -> vec4<f32> {
      let at = (o * uniforms.K + k) / 2;
      let a = bitcast<u32>(w[at]);
      let b = bitcast<u32>(w[at + 1]);
      return vec4<f32>(bitcast<f32>(a << 16u), bitcast<f32>(a & 0xffff0000u),
                       bitcast<f32>(b << 16u), bitcast<f32>(b & 0xffff0000u));
    }`;
}

/** out[i] = Σ_s partials[s · size + i]: the split-K sums, in a fixed order (deterministic). */
export class GemmSplitSumProgram extends EdkmProgram {
  shaderKey: string;
  variableNames = ['P'];
  uniforms = 'count : i32, splits : i32,';
  outputComponent: number;

  constructor(outputShape: number[], splits: number, vec: boolean) {
    const count = outputShape.reduce((a, b) => a * b, 1) / (vec ? 4 : 1);
    super(outputShape, [Math.ceil(count / 256), 1, 1]);
    this.outputComponent = vec ? 4 : 1;
    this.shaderKey = `edkm_gemm_split_sum_${vec ? 4 : 1}_${splits}`;
  }

  getUserCode(): string {
    const t = this.outputComponent === 4 ? 'vec4<f32>' : 'f32';
    return `
      fn main(index : i32) {
        if (index < uniforms.count) {
          var s = ${t}(0.0);
          for (var i = 0; i < uniforms.splits; i = i + 1) {
            s = s + P[i * uniforms.count + index];
          }
          result[index] = s;
        }
      }`;
  }
}
