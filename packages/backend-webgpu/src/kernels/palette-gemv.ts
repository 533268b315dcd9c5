import type { LinearFusion, PaletteMatMulAttrs, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { allocate, runRaw, uniformBlock } from '../raw';
import { chunkBits, chunkField } from './palette-rows';
import {
  type SubgroupMode,
  maxInvocations,
  maxSubgroupSize,
  minSubgroupSize,
  softwareDevice,
  subgroupKernelOn,
} from './subgroup-route';

/**
 * PaletteMatMul for one row of x (decoding) on a device with subgroups: the "x-stationary" shape.
 *
 * Thread c of a workgroup owns the 32 weights 32c..32c+31 of every weight row (one thread per
 * 32-column chunk of K: 128 threads at K = 4096, 352 at 11,008) and keeps x's 32 values of its
 * chunk in registers for the whole workgroup. The workgroup then walks RB weight rows: for each,
 * every thread reads its `bits` index words (the threads' words lie side by side: one sweep of
 * the row, though each load of a subgroup takes one word every `bits`), looks its
 * 32 entries up in the row's LUT (staged in workgroup memory: all lanes of a subgroup read the
 * same ≤ 2^bits neighbouring words, so no bank conflicts) and accumulates; sums over the subgroup
 * (a butterfly over the row group where the subgroup size is fixed, see GemvShape.butterfly) and
 * one slot per subgroup replace the per-row tree and barriers of the rows shape. x is read once
 * per workgroup instead of once per weight row, so the inner loop reads only index words, and U
 * rows at a time keep U·bits loads in flight per thread.
 *
 * What bounds it (H200, bench/gemv-ab.sh): its instructions per weight and their latency, not
 * memory — without reading any index words a 7B layer's gate-up product still takes 48 of 54 µs;
 * the 7B-shaped decode step runs 460 tokens/s without the per-weight work and 269 without the
 * index loads, against 265 with both (bench/results/h200-2026-12-04/, calls s9-1, s9-2, s9-6).
 *
 * Why: the rows shape (PaletteRowsProgram) read 64 bytes of x (and g) per 3 bytes of indices and
 * reduced each row through five barriers; on the H200 it reached ~400 GB/s on a 7B layer's
 * gate-up product (bench/results/h200-2026-12-02/decode-ops-lanes.json).
 *
 * Measured slower on the H200 and removed (stop 40; the files name them): LUT pairs (one 8-byte
 * lookup per two weights, decode-ops-gemv-pairs.txt), two threads a chunk (decode-ops-call18.txt),
 * coalesced index loads with a shuffle exchange (decode-ops-s3.txt, decode-ops-kvfuse-s6-4.txt:
 * 7B decode 217 against 231 tokens/s), several streams of rows a
 * workgroup (decode-ops-streams-s5-4.txt), all under bench/results/h200-2026-12-03/. Also slower:
 * lookups by trees of selects over the row's entries in registers instead of shuffles, though the
 * shuffles bound the persistent gate-up product (h200-2026-12-04/decode-ops-selects-s8-9.txt,
 * decode-ops-nolut-s8-7.txt).
 */
export interface GemvShape {
  /** Columns of K (a multiple of 32). */
  k: number;
  bits: number;
  /** Weight rows per workgroup. */
  rb: number;
  /** Rows whose index loads are issued together. */
  unroll: number;
  fusion: LinearFusion;
  /** Index loads a row group ahead: the first group's before the LUT staging and x loads. */
  prefetch?: boolean;
  /**
   * Measurement only (wrong results): parts of the kernel left out to see what bounds it
   * (bench/decode-ops.ts through EDKM_GEMV_ABLATE): 'noload' (index words made from the row
   * instead of read), 'nolut' (each entry's bits as a float instead of its LUT entry), 'nosum'
   * (no subgroup sum per row), 'nomath' (no per-weight work), 'nomask' (shuffle indices left
   * unmasked: the bits above a field are the next fields', so the lookup is right only where the
   * shuffle takes its lane modulo the subgroup size — lane l holds entry l % 2^bits. WGSL leaves
   * an index past the subgroup indeterminate, and on the H200 6 of the 38 conformance cases fail:
   * it measures what the mask costs, 7B-shaped decode 236–241 → 265–267 tokens/s in call s7-1).
   */
  ablate?: readonly GemvAblation[];
  /**
   * The subgroup size, where every subgroup of the device has the same one (NVIDIA 32, lavapipe
   * 8): then the `unroll` rows of a group are summed over the subgroup together, a butterfly of
   * subgroupShuffleXor that halves the rows each lane carries at each of the first log2(unroll)
   * steps (unroll − 1 shuffles, then one a step for the rest) instead of a subgroupAdd a row
   * (unroll · log2(size) shuffles). Needs unroll a power of two up to the size.
   */
  butterfly?: number;
  /**
   * The smallest subgroup size of the device, where the LUT lookups go through subgroupShuffle:
   * before each row group, lane l of a subgroup reads entry l % 2^bits of each row's LUT from
   * workgroup memory into a register, and each weight's entry is the shuffle of that register
   * from the lane its index names. A lookup then takes no address arithmetic (the workgroup-memory
   * load's add, bounds clamp and byte offset) and no workgroup-memory load: the field extraction,
   * the shuffle and the FMA. Needs 2^bits ≤ the size (NVIDIA 32: up to 5 bits; lavapipe 8: up to
   * 3).
   */
  shuffle?: number;
  /**
   * Persistent workgroups (needs `shuffle`): `grid` workgroups, each walking the row
   * groups (of `unroll` rows) wg, wg + grid, … of the n rows, so that every workgroup runs in the
   * first wave and the rows spread over them in small pieces (a 16-row block per workgroup left
   * the last of two to three waves mostly empty). Each row's LUT entry comes straight from `lut`
   * (no staging, no first barrier) with the row's index words.
   */
  grid?: number;
  /** Rows of the product (needed with `grid`: the groups a workgroup walks are a shader constant). */
  n?: number;
  /**
   * A row's 32 products summed as two chains of fma (x values 0–15 and 16–31) instead of eight
   * vec4 dot products and their sum.
   */
  fma?: boolean;
  /**
   * The weight has one LUT (every row's group 0: DKM's one codebook a tensor; needs `shuffle`):
   * each lane reads its entry once, before the rows, instead of a row's entry with each row (the
   * rows' group loads, the LUT staging and its barrier left out).
   */
  uniformLut?: boolean;
}

export type GemvAblation = 'noload' | 'nolut' | 'nosum' | 'nomath' | 'nomask';

/** Where the GEMV runs (see SubgroupMode). */
export type GemvMode = SubgroupMode;
let gemvMode: GemvMode = 'auto';
type GemvTuning = {
  rb?: number;
  unroll?: number;
  prefetch?: boolean;
  ablate?: readonly GemvAblation[];
  /**
   * LUT lookups through subgroupShuffle where 2^bits ≤ the device's smallest subgroup
   * (GemvShape.shuffle; default true), else from workgroup memory.
   */
  shuffle?: boolean;
  /**
   * How a row group is summed over the subgroup: 'butterfly' (GemvShape.butterfly; the default
   * where the subgroup size is fixed) or a subgroupAdd a row.
   */
  reduce?: 'add' | 'butterfly';
  /**
   * Threads of a persistent grid (GemvShape.grid = this / the workgroup's threads: one number for
   * every K; 0 or absent: a block of rb rows a workgroup).
   */
  grid?: number;
  /** GemvShape.fma (default true; false: A/B). */
  fma?: boolean;
  /** GemvShape.uniformLut where the weight has one LUT (default true; false: A/B). */
  uniformLut?: boolean;
};
let gemvTuning: GemvTuning = {};
/** Where the x-stationary GEMV runs ('off': decode takes the rows shape) and its tile (A/B). */
export function setPaletteGemv(mode: GemvMode, tuning: GemvTuning = {}): void {
  gemvMode = mode;
  gemvTuning = tuning;
}

/** Threads of the workgroup for K: one per 32-column chunk, rounded up to a multiple of 32. */
export function gemvThreads(k: number): number {
  return Math.ceil(k / 32 / 32) * 32;
}

/**
 * Whether PaletteMatMul takes this kernel: one row of x, word-aligned rows (K a multiple of 32,
 * cluster dimension 1), K from 2,048 (below it the chunks leave most threads idle: the rows shape
 * is as fast and the product is host-bound anyway) up to what one workgroup can cover.
 */
export function useGemv(m: number, k: number, clusterDim: number): boolean {
  return (
    subgroupKernelOn(gemvMode) &&
    m === 1 &&
    clusterDim === 1 &&
    k % 32 === 0 &&
    k >= 2048 &&
    gemvThreads(k) <= maxInvocations()
  );
}

/**
 * The tile for a product of n rows of K columns: RB rows per workgroup (at most 8 KiB of LUTs), U
 * unrolled, and the tuning's other options as this device can take them.
 */
export function gemvTile(
  n: number,
  bits: number,
  k: number,
): {
  rb: number;
  unroll: number;
  prefetch: boolean;
  ablate: readonly GemvAblation[];
  butterfly: number | undefined;
  shuffle: number | undefined;
  grid: number | undefined;
  n: number;
  fma: boolean;
} {
  // lookups through subgroupShuffle wherever the LUT fits a subgroup (the default: 7B-shaped
  // 3-bit decode 218.0 / 219.0 → 222.0 / 221.5 tokens/s, and 4 rows at a time 225.8 / 226.2,
  // A/B/A/B in call s6-2: bench/results/h200-2026-12-03/decode-ops-shuffle-s6-2.txt)
  const shuffle =
    (gemvTuning.shuffle ?? true) && 1 << bits <= minSubgroupSize() ? minSubgroupSize() : undefined;
  // 16 rows, 8 at a time with the LUT in workgroup memory: the best of 16/32/64 × 2/4/8 on the
  // H200 (QKV 34.6 µs, gate-up 52.6, down 29.2; bench/results/h200-2026-12-03/
  // decode-ops-gemv-tiles.txt); 4 at a time with shuffles (fewer registers: gate-up 51.3 → 48.2,
  // QKV 34.1 → 32.5, down 27.7 → 27.0 µs, call s6-1; 2 at a time no better, call s6-2)
  const unroll = gemvTuning.unroll ?? (shuffle ? 4 : 8);
  const slots = 1 << bits; // words of LUT a row
  // 8 rows a workgroup for a 4096×4096 product (the O projection: 512 workgroups instead of 256;
  // 20.0–20.7 µs against 24.4 on the H200, where QKV, gate-up and down were slower with 8:
  // bench/results/h200-2026-12-03/decode-ops-s4-2.txt)
  let rb = gemvTuning.rb ?? (n * k <= 4096 * 4096 ? 8 : 16);
  rb = Math.max(unroll, Math.min(rb, Math.floor(2048 / slots)));
  rb -= rb % unroll;
  const fixed = minSubgroupSize() === maxSubgroupSize() ? maxSubgroupSize() : 0;
  // persistent workgroups (GemvShape.grid) for the largest products on a hardware adapter, 67,584
  // threads (512 for each of the H200's 132 multiprocessors): a 7B layer's gate-up product 48.3 →
  // 41.6 µs, where QKV, O and down were no faster or slower (bench/results/h200-2026-12-04/
  // decode-ops-grid-s7-1.txt)
  const gridThreads =
    shuffle !== undefined
      ? (gemvTuning.grid ?? (!softwareDevice() && n * k >= 1 << 26 ? 67584 : 0))
      : 0;
  return {
    rb,
    unroll,
    // the next row group's index loads before this one's sums, where lookups are shuffles (7B-shaped
    // 3-bit decode 231.7 / 231.4 → 235.2 / 235.6 tokens/s, A/B/A/B in call s6-4)
    prefetch: gemvTuning.prefetch ?? shuffle !== undefined,
    ablate: gemvTuning.ablate ?? [],
    // (butterfly by default: 7B-shaped 3-bit decode 198.0–198.5 → 212.5–213.0 tokens/s on the
    // H200, A/B/A/B in one call: bench/results/h200-2026-12-03/decode-ops-ablate-s5-7.txt)
    butterfly: (gemvTuning.reduce ?? 'butterfly') === 'butterfly' && fixed ? fixed : undefined,
    shuffle,
    grid: gridThreads > 0 ? Math.max(1, Math.floor(gridThreads / gemvThreads(k))) : undefined,
    n,
    // two fma chains a row (7B-shaped 3-bit decode 254.7 / 254.6 → 261.7 / 260.9 tokens/s, A/B/A/B
    // in call s9-3: bench/results/h200-2026-12-04/decode-ops-fma-s9-3.txt)
    fma: gemvTuning.fma ?? true,
  };
}

/** The WGSL of the x-stationary GEMV (bindings: x, codes, lut, rows, scales, [g], [residual], y, uniforms). */
export function paletteGemvWgsl(shape: GemvShape): string {
  const { k, bits, rb, unroll, fusion } = shape;
  const ablate = new Set(shape.ablate ?? []);
  const sgFixed = shape.butterfly ?? 0;
  const fly =
    sgFixed > 0 &&
    unroll >= 2 &&
    (unroll & (unroll - 1)) === 0 &&
    unroll <= sgFixed &&
    !ablate.has('nosum');
  const shuffle = (shape.shuffle ?? 0) >= 1 << bits && !ablate.has('nolut');
  const nomath = ablate.has('nomath');
  // (GemvShape.grid) persistent workgroups: M groups of `unroll` rows each at most, slot r + u of
  // a workgroup holding row (wg + r / unroll · grid) · unroll + u
  const persist = shuffle && (shape.grid ?? 0) > 0 && (shape.n ?? 0) > 0;
  // (GemvShape.uniformLut) one LUT entry a lane for all rows
  const uniform = shuffle && (shape.uniformLut ?? false);
  // where a row's LUT comes from: staged in workgroup memory for the workgroup's block of rows, or
  // (persistent) each row's entry read with its words, or (uniform) neither
  const staged = !persist && !uniform;
  const entryWithRow = persist && !uniform;
  /** The register row u's lookups shuffle. */
  const lrOf = (u: number) => (uniform ? 'lr' : `lr${u}`);
  const grid = shape.grid ?? 0;
  const groups = Math.ceil((shape.n ?? 0) / unroll);
  const slotsN = persist ? Math.ceil(groups / grid) * unroll : rb;
  // (ablation 'nomask': shuffle indices without their mask, the next fields' bits above them)
  const wrap = shuffle && ablate.has('nomask');
  /** The row of slot r + u (r a WGSL expression). */
  const rowOf = (r: string, u: number | string) => {
    const du = typeof u === 'number' ? `${u}u` : u;
    return persist
      ? `(wg.x + (${r}) / ${unroll}u * ${grid}u) * ${unroll}u + ${du}`
      : `first + ${r} + ${du}`;
  };
  const per = 1 << bits; // LUT slots a row
  const rms = fusion.prologue === 'rmsnorm';
  const wgt = gemvThreads(k);
  const nq = 8; // vec4s of x a thread holds
  const ch = k / 32;
  const entries = 1 << bits;
  const nsg = wgt / 4; // subgroup slots: any subgroup size from 4 up
  const raw = bits; // index words a thread loads per row
  let binding = 5;
  const gBinding = rms ? binding++ : -1;
  const resBinding = fusion.residual ? binding++ : -1;
  const yBinding = binding++;
  const uBinding = binding;
  // the thread's chunk
  const setup = [`let on = tid < ${ch}u;`, `let c = min(tid, ${ch - 1}u);`];
  /** Offset of the thread's word j in a row. */
  const offset = (j: number) => `c * ${bits}u + ${j}u`;
  /** The thread's vec4 q of x. */
  const xAt = (q: number) => `c * 8u + ${q}u`;
  const lines: string[] = [];
  // x's 32 values of this thread's chunk (zero past K), times g under the RMSNorm prologue;
  // under SwiGLU's, silu(gate) · up from x [1, 2K] (computed once per workgroup and chunk)
  const swiglu = fusion.prologue === 'swiglu';
  for (let q = 0; q < nq; q++)
    lines.push(
      swiglu
        ? `let gt${q} = x[${xAt(q)}]; var x${q} = select(vec4<f32>(0.0), gt${q} / (vec4<f32>(1.0) + exp(-gt${q})) * x[${k / 4}u + ${xAt(q)}], on);`
        : `var x${q} = select(vec4<f32>(0.0), x[${xAt(q)}], on);`,
    );
  if (rms) {
    lines.push(
      `var ss = ${Array.from({ length: nq }, (_, q) => `dot(x${q}, x${q})`).join(' + ')};`,
      'ss = subgroupAdd(ss);',
      `if (sl == 0u) { ssP[st * ${nsg}u + sg] = ss; }`,
    );
    for (let q = 0; q < nq; q++) lines.push(`x${q} = x${q} * g[${xAt(q)}];`);
  }
  /** The loads of row r + u's words into k{u}_{j} (`decl`: let, var or an assignment). */
  const loads = (r: string, u: number, decl: string): string =>
    Array.from({ length: raw }, (_, j) =>
      ablate.has('noload')
        ? `${decl}k${u}_${j} = ((${rowOf(r, u)}) * 2654435761u) ^ (${offset(j)});`
        : `${decl}k${u}_${j} = codes[min(${rowOf(r, u)}, u.n - 1u) * ${ch * bits}u + ${offset(j)}];`,
    )
      .concat(
        // (persistent) the row's LUT entry for this lane, with its words
        entryWithRow
          ? [
              `${decl}m${u} = lut[u32(rows[2u * min(${rowOf(r, u)}, u.n - 1u) + 1u]) * ${1 << bits}u + (sl & ${(1 << bits) - 1}u)];`,
            ]
          : [],
      )
      .join(' ');
  /** Row u's words cw{w}_{u} from the loaded k{u}_{j}. */
  const words = (u: number): string[] =>
    Array.from({ length: bits }, (_, w) => `let cw${w}_${u} = k${u}_${w};`);
  /** Row r + u's sum of LUT entries times x. */
  const sums = (r: string, u: number): string[] => {
    const out = staged ? [`let lb${u} = (so + ${r} + ${u}u) * ${per}u;`] : [];
    // (GemvShape.shuffle) lane l holds entry l % entries of the row's LUT
    if (shuffle && staged) out.push(`let lr${u} = lutS[lb${u} + (sl & ${entries - 1}u)];`);
    const field = (j: number, width: number) =>
      chunkField(j, width)
        .replace(/cw(\d+)/g, `cw$1_${u}`)
        .replace(/^i32\((.*)\)$/, '$1');
    /** (ablation 'nomask') field j without its mask: the bits above it are the next fields'. */
    const unmasked = (j: number, width: number) =>
      chunkBits(j, width).replace(/cw(\d+)/g, `cw$1_${u}`);
    const entry = (j: number) => {
      const e = wrap ? unmasked(j, bits) : `(${field(j, bits)})`;
      return ablate.has('nolut')
        ? `bitcast<f32>(${e} | 0x3f800000u)`
        : shuffle
          ? `subgroupShuffle(${lrOf(u)}, ${e})`
          : `lutS[lb${u} + ${e}]`;
    };
    const xyzw = ['x', 'y', 'z', 'w'];
    /** (GemvShape.fma) the products of x values from..from + 15 as one chain of fma. */
    const chain = (from: number) => {
      let acc = `x${from >> 2}.x * ${entry(from)}`;
      for (let j = from + 1; j < from + 16; j++)
        acc = `fma(x${j >> 2}.${xyzw[j & 3]}, ${entry(j)}, ${acc})`;
      return `(${acc})`;
    };
    const terms = shape.fma
      ? [chain(0), chain(16)]
      : Array.from(
          { length: nq },
          (_, q) =>
            `dot(x${q}, vec4<f32>(${[0, 1, 2, 3].map((i) => entry(4 * q + i)).join(', ')}))`,
        );
    if (nomath)
      // (measurement: no per-weight work; the row's words still feed the sum, so none is dead)
      terms.splice(
        0,
        terms.length,
        `x0.x * f32(${Array.from({ length: bits }, (_, w) => `cw${w}_${u}`).join(' ^ ')})`,
      );
    if (fly) {
      // (summed over the subgroup with the group's other rows: butterfly below)
      out.push(`let t${u} = ${terms.join(' +\n        ')};`);
      return out;
    }
    out.push(
      `let s${u} = ${ablate.has('nosum') ? '' : 'subgroupAdd'}(${terms.join(' +\n        ')});`,
      `if (sl == 0u) { part[(so + ${r} + ${u}u) * ${nsg}u + sg] = s${u}; }`,
    );
    return out;
  };
  const us = Array.from({ length: unroll }, (_, u) => u);
  /**
   * The group's row sums t0.. over the subgroup (GemvShape.butterfly): at step i (mask 2^i) a
   * lane keeps the upper half of its rows if bit i of its lane is set, else the lower half, and
   * adds the partner's copy of the half it keeps; after log2(unroll) steps lane l carries one row
   * (Σ bit_i · unroll / 2^(i+1)), summed over the rest of the subgroup by plain steps.
   */
  const butterfly = (r: string): string[] => {
    const out: string[] = [];
    let vals = us.map((u) => `t${u}`);
    const picks: string[] = [];
    for (let m = 1, i = 0; m < unroll; m *= 2, i++) {
      const h = vals.length / 2;
      out.push(`let bit${i} = (sl & ${m}u) != 0u;`);
      vals = Array.from({ length: h }, (_, j) => {
        const [lo, hi] = [vals[j], vals[j + h]];
        out.push(
          `let f${i}_${j} = select(${lo}, ${hi}, bit${i}) + subgroupShuffleXor(select(${hi}, ${lo}, bit${i}), ${m}u);`,
        );
        return `f${i}_${j}`;
      });
      picks.push(`select(0u, ${h}u, bit${i})`);
    }
    out.push(`var fs = ${vals[0]};`);
    for (let m = unroll; m < sgFixed; m *= 2) out.push(`fs = fs + subgroupShuffleXor(fs, ${m}u);`);
    out.push(
      `if (sl < ${unroll}u) { part[(so + ${r} + ${picks.join(' + ')}) * ${nsg}u + sg] = fs; }`,
    );
    return out;
  };
  /** One group of `unroll` rows from row r (a WGSL expression): their loads, then their sums. */
  const group = (r: string): string => {
    const body: string[] = [];
    if (shape.prefetch) {
      // this group's words were loaded the iteration before (or before the staging): load the
      // next group's (the last group's again on the last iteration) before the sums
      for (const u of us)
        body.push(
          Array.from({ length: raw }, (_, j) => `let n${u}_${j} = k${u}_${j};`)
            .concat(entryWithRow ? [`let lr${u} = m${u};`] : [])
            .join(' '),
        );
      if (slotsN > unroll) {
        body.push(`let rn = min(${r} + ${unroll}u, ${slotsN - unroll}u);`);
        for (const u of us) body.push(loads('rn', u, ''));
      }
      for (const u of us) body.push(...words(u).map((l) => l.replace(/\bk(\d+)_/g, 'n$1_')));
    } else {
      for (const u of us) body.push(loads(r, u, 'let '));
      if (entryWithRow) for (const u of us) body.push(`let lr${u} = m${u};`);
      for (const u of us) body.push(...words(u));
    }
    for (const u of us) body.push(...sums(r, u));
    if (fly) body.push(...butterfly(r));
    return `{
    ${body.join('\n    ')}
  }`;
  };
  // (the groups written out with constant rows, and two threads a chunk, measured no faster on the
  // H200: bench/results/h200-2026-12-03/decode-ops-call18.txt)
  // Every loop counts by one up to a constant or a `let` made before it: the loops Tint proves
  // finite, where Dawn's robustness adds a 64-bit iteration counter to any other (Tint's
  // PreventInfiniteLoops and LoopAnalysis).
  /** `body` for `v` = start, start + step, … below end, as such a loop (end and step constants). */
  const strided = (v: string, start: string, end: number, step: number, body: string) =>
    `for (var i = 0u; i < ${Math.ceil(end / step)}u; i = i + 1u) {
    let ${v} = ${start} + i * ${step}u;
    if (${v} < ${end}u) {
      ${body}
    }
  }`;
  const walk = `for (var gi = 0u; gi < ${slotsN / unroll}u; gi = gi + 1u) {
    let r = gi * ${unroll}u;
    ${persist ? `if (wg.x + gi * ${grid}u >= ${groups}u) { break; }` : ''}
    ${group('r')}
  }`;
  // under `prefetch`, the first group's loads go out before the LUT staging and x loads
  const early = shape.prefetch ? us.map((u) => loads('0u', u, 'var ')) : [];
  const scaled = rms ? `t * inverseSqrt(ssSum / ${k}.0 + u.eps)` : 't';
  // the rows' LUTs into workgroup memory (not under `grid`: each row's entry comes with its words)
  const staging = strided(
    'e',
    'wtid',
    rb * per,
    wgt,
    `let row = min(wg.x * ${rb}u + e / ${per}u, u.n - 1u);
      let at = u32(rows[2u * row + 1u]) * ${entries}u;
      lutS[e] = lut[at + e % ${entries}u];`,
  );
  /** Slot e's row (sum over the subgroups' slots, scale, residual) into y. */
  const finish = (e: string, row: string) => `let row = ${row};
    if (row < u.n) {
      var t = 0.0;
      for (var i = 0u; i < parts; i = i + 1u) { t = t + part[(${e}) * ${nsg}u + i]; }
      ${rms ? `var ssSum = 0.0;\n      for (var i = 0u; i < parts; i = i + 1u) { ssSum = ssSum + ssP[st * ${nsg}u + i]; }` : ''}
      let oi = u32(rows[2u * row]);
      y[oi] = scales[row] * ${scaled}${fusion.residual ? ' + residual[oi]' : ''};
    }`;
  const final = persist
    ? strided('e', 'tid', slotsN, wgt, finish('e', rowOf(`e - e % ${unroll}u`, `e % ${unroll}u`)))
    : `if (tid < ${rb}u) {
    ${finish('so + tid', 'first + tid')}
  }`;
  return `
enable subgroups;
struct U { n : u32, eps : f32, p0 : u32, p1 : u32 };
@group(0) @binding(0) var<storage, read> x : array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> codes : array<u32>;
@group(0) @binding(2) var<storage, read> lut : array<f32>;
@group(0) @binding(3) var<storage, read> rows : array<i32>;
@group(0) @binding(4) var<storage, read> scales : array<f32>;
${rms ? `@group(0) @binding(${gBinding}) var<storage, read> g : array<vec4<f32>>;` : ''}
${fusion.residual ? `@group(0) @binding(${resBinding}) var<storage, read> residual : array<f32>;` : ''}
@group(0) @binding(${yBinding}) var<storage, read_write> y : array<f32>;
@group(0) @binding(${uBinding}) var<uniform> u : U;
${staged ? `var<workgroup> lutS : array<f32, ${rb * per}>;` : ''}
var<workgroup> part : array<f32, ${persist ? slotsN * nsg : rb * nsg}>;
${rms ? `var<workgroup> ssP : array<f32, ${nsg}>;` : ''}
@compute @workgroup_size(${wgt})
fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(local_invocation_index) wtid : u32,
        @builtin(subgroup_invocation_id) sl : u32, @builtin(subgroup_size) sgs : u32) {
  // stream st of the workgroup: its thread tid, its rows from \`first\`, its LUTs and slots from so
  let st = wtid / ${wgt}u;
  let tid = wtid % ${wgt}u;
  let so = st * ${rb}u;
  let first = wg.x * ${rb}u + so;
  let sg = tid / sgs;
  let parts = ${wgt}u / sgs; // the workgroup's subgroups
  ${ablate.has('noload') ? '_ = codes[0]; // (the binding stays in the layout)' : ''}
  ${setup.join('\n  ')}
  ${early.join('\n  ')}
  ${staged ? staging : ''}
  ${uniform ? `let lr = lut[sl & ${entries - 1}u];` : ''}
  ${lines.join('\n  ')}
  ${staged ? 'workgroupBarrier();' : ''}
  ${walk}
  workgroupBarrier();
  ${final}
}`;
}

/** PaletteMatMul through the x-stationary GEMV (the caller checked useGemv). */
export function paletteGemv(
  backend: WebGPUBackend,
  inputs: {
    x: tf.TensorInfo;
    codes: tf.TensorInfo;
    lut: tf.TensorInfo;
    rows: tf.TensorInfo;
    scales: tf.TensorInfo;
    g?: tf.TensorInfo;
    residual?: tf.TensorInfo;
  },
  attrs: PaletteMatMulAttrs,
): tf.TensorInfo {
  const { x, codes, lut, rows, scales, g, residual } = inputs;
  const k = attrs.prologue === 'swiglu' ? x.shape[1] / 2 : x.shape[1];
  const n = rows.shape[0];
  const { bits } = attrs;
  const fusion: LinearFusion = {
    prologue: attrs.prologue,
    residual: attrs.residual,
    eps: attrs.eps,
  };
  const tile = gemvTile(n, bits, k);
  // (GemvShape.uniformLut) one LUT for every row
  // (7B-shaped 3-bit decode 250.8 / 250.6 → 254.7 / 254.6 tokens/s, A/B/A/B in call s9-3)
  const uniformLut =
    tile.shuffle !== undefined && (gemvTuning.uniformLut ?? true) && lut.shape[0] === 1 << bits;
  const { rb, unroll, prefetch, ablate, butterfly, shuffle, grid, fma } = tile;
  const y = allocate(backend, [1, n]);
  const tensors = [x, codes, lut, rows, scales];
  if (fusion.prologue === 'rmsnorm') tensors.push(g as tf.TensorInfo);
  if (fusion.residual) tensors.push(residual as tf.TensorInfo);
  tensors.push(y);
  runRaw(backend, {
    key: `EdkmPaletteGemv:${k}_${bits}_${rb}_${unroll}_${prefetch ? 'pf' : 'npf'}_${ablate.join('+')}_f${butterfly ?? 0}_sh${shuffle ?? 0}_${grid ? `g${grid}n${n}` : 'blocks'}${fma ? '_fma' : ''}${uniformLut ? '_u' : ''}_${fusion.prologue ?? 'plain'}_${fusion.residual ? 'res' : 'nores'}`,
    wgsl: () => paletteGemvWgsl({ k, bits, fusion, ...tile, uniformLut }),
    tensors,
    uniforms: uniformBlock([
      ['u', n],
      ['f', fusion.prologue === 'rmsnorm' ? (fusion.eps as number) : 0],
    ]),
    groups: [grid ?? Math.ceil(n / rb), 1, 1],
  });
  return y;
}
