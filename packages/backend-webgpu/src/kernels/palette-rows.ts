import type { LinearFusion } from '@edkm/core';
import { EdkmProgram } from '../programs';
import { fusionBindings, linearGrid, linearInput, perRow } from './palette-matmul';

/** Threads per workgroup of the rows shape: ROWS weight rows, 32 lanes each. */
const WG = 256;
const LANES = 32;
const ROWS = WG / LANES;

/** How the rows shape keeps its LUTs in workgroup memory at 1–3 bits (see PaletteRowsProgram.lanes). */
export type PaletteLut = 'pairs' | 'lanes';
let paletteLut: PaletteLut = 'lanes';
export function setPaletteLut(mode: PaletteLut): void {
  paletteLut = mode;
}

/**
 * The words cw0.. shifted so that `width`-bit field j (of 32 fields of a chunk) is their low bits,
 * the next fields' bits above it (unmasked), as WGSL.
 */
export function chunkBits(j: number, width: number): string {
  const bit = j * width;
  const w = bit >> 5;
  const sh = bit & 31;
  return sh + width <= 32
    ? `(cw${w} >> ${sh}u)`
    : `((cw${w} >> ${sh}u) | (cw${w + 1} << ${32 - sh}u))`;
}

/** `width`-bit field j of the words cw0.. (32 fields of a chunk), as WGSL. */
export function chunkField(j: number, width: number): string {
  return `i32(${chunkBits(j, width)} & ${(1 << width) - 1}u)`;
}

/** Dispatch of the rows shape over n weight rows and m rows of x: linearGrid over blocks of ROWS. */
export function rowsGrid(n: number, m: number, mt: number) {
  return linearGrid(Math.ceil(n / ROWS), m, mt);
}

/**
 * PaletteMatMul on rows whose indices start on a word (d = 1, K a multiple of 32): a workgroup
 * takes ROWS (8) weight rows, 32 lanes to a row. At 1–4 bits lane j takes weights 8j..8j+7 of
 * each 256: the 32 lanes read neighbouring x values and neighbouring index words (coalesced),
 * and the lane's 8·bits index bits come out of one funnel shift. (The one-row-per-workgroup shape
 * gave each thread a chunk of 32 weights: its x reads were 128 bytes apart across threads, one
 * cache line per thread per load.) Above 4 bits each lane takes chunks of 32 (`bits` words). The
 * rows' LUTs wait in workgroup memory (pairs at 1–3 bits: one lookup per two weights); two
 * barriers and a five-step tree per eight rows. With an RMSNorm prologue each group's lanes read
 * each x row once, so the sum of squares comes out of the same loop and tree.
 */
export class PaletteRowsProgram extends EdkmProgram {
  override workgroupSize: [number, number, number] = [WG, 1, 1];
  variableNames = ['x', 'codes', 'lut', 'rows', 'scales'];
  variableComponents: number[];
  uniforms = 'm : i32, n : i32, k : i32, grid : i32, passes : i32,';
  shaderKey: string;
  readonly passes: number;
  readonly grid: number;
  constructor(
    m: number,
    n: number,
    private readonly bits: number,
    private readonly mt: number,
    private readonly fusion: LinearFusion = {},
  ) {
    super([m, n], rowsGrid(n, m, mt).dispatch);
    const g = rowsGrid(n, m, mt);
    this.passes = g.passes;
    this.grid = g.grid;
    const extra = fusionBindings(fusion, 4);
    this.variableNames.push(...extra.names);
    this.uniforms += extra.uniforms;
    this.variableComponents = [4, 1, 1, 1, 1, ...extra.components];
    this.shaderKey = `edkm_palette_rows_${bits}_${mt}_${extra.key}_${paletteLut}`;
  }

  /** Pairs at 1–3 bits (≤ 64 pairs a row) unless the LUT is laid out per lane; single entries above. */
  private get pairs(): boolean {
    return this.bits <= 3 && !this.lanes;
  }

  /**
   * 'lanes' (1–3 bits, the default): each entry stored 32 times, lane l reading copy l, so that
   * the 32 lanes' lookups fall in 32 different banks (random indices into one small table collide
   * in a few). H200, same call: QKV 55 → 51 µs, gate-up 89 → 84 against 'pairs' (one lookup per
   * two weights, colliding).
   */
  private get lanes(): boolean {
    return this.bits <= 3 && paletteLut === 'lanes';
  }

  /** At 1–4 bits eight neighbouring weights fit one funnel-shifted word (the contiguous loop). */
  private get contiguous(): boolean {
    return this.bits <= 4;
  }

  getUserCode(): string {
    const { bits, mt, fusion } = this;
    const rms = fusion.prologue === 'rmsnorm';
    const input = linearInput(fusion, 4, true);
    const entries = 1 << bits;
    const per = this.pairs ? 1 << (2 * bits) : entries; // LUT slots a row
    const copies = this.lanes ? LANES : 1;
    const look = (field: string) =>
      this.lanes ? `lutS[(lb + ${field}) * ${LANES} + lane]` : `lutS[lb + ${field}]`;
    const mask = entries - 1;
    const lines: string[] = [];
    // the inner loop: at 1–4 bits each lane takes 8 neighbouring weights per step (the lanes'
    // x reads and index words side by side in memory), above 4 bits a chunk of 32 (bits words)
    let loop: string;
    if (this.contiguous) {
      const width = this.pairs ? 2 * bits : bits;
      const fields = this.pairs ? 4 : 8;
      /** One step of a lane at weight offset `at` (names suffixed `_u`): 8 weights. */
      const step = (u: number, at: string): string => {
        const out: string[] = [
          `let bit_${u} = u32((${at}) * ${bits});`,
          `let w_${u} = rowWord + i32(bit_${u} >> 5u);`,
          `let sh_${u} = bit_${u} & 31u;`,
          `let w0_${u} = bitcast<u32>(codes[w_${u}]);`,
        ];
        // 24 bits from a shift of 0, 8, 16 or 24 may span two words; 8, 16, 32 bits never do
        if (bits === 3)
          out.push(
            `let w1_${u} = bitcast<u32>(codes[w_${u} + 1]);`,
            `let v_${u} = select((w0_${u} >> sh_${u}) | (w1_${u} << (32u - sh_${u})), w0_${u}, sh_${u} == 0u);`,
          );
        else out.push(`let v_${u} = w0_${u} >> sh_${u};`);
        for (let j = 0; j < fields; j++)
          out.push(
            `let f${j}_${u} = ${look(`i32((v_${u} >> ${j * width}u) & ${(1 << width) - 1}u)`)};`,
          );
        const lv = this.pairs
          ? [`vec4<f32>(f0_${u}, f1_${u})`, `vec4<f32>(f2_${u}, f3_${u})`]
          : [
              `vec4<f32>(f0_${u}, f1_${u}, f2_${u}, f3_${u})`,
              `vec4<f32>(f4_${u}, f5_${u}, f6_${u}, f7_${u})`,
            ];
        lv.forEach((e, q) => out.push(`let lv${q}_${u} = ${e};`));
        for (let q = 0; q < 2; q++)
          out.push(
            perRow(mt, (r) => {
              const x = input.read(r, `(${at}) / 4 + ${q}`, `x${r}_${q}_${u}`);
              return `${x.decl} acc${r} = acc${r} + dot(${x.value}, lv${q}_${u});`;
            }),
          );
        return out.join('\n              ');
      };
      // (four independent steps per iteration, their loads in flight together, measured the
      // same on the H200, and conflict-free LUT lookups gained 5%: what bounds these products is
      // not yet pinned down)
      loop = `
            let rowWord = s * (uniforms.k / 32) * ${bits};
            for (var o = lane * 8; o < uniforms.k; o = o + ${LANES * 8}) {
              ${step(0, 'o')}
            }`;
    } else {
      for (let w = 0; w < bits; w++) lines.push(`let cw${w} = bitcast<u32>(codes[w0 + ${w}]);`);
      for (let j = 0; j < 32; j++) lines.push(`let l${j} = lutS[lb + ${chunkField(j, bits)}];`);
      for (let q = 0; q < 8; q++)
        lines.push(
          `let lv${q} = vec4<f32>(l${4 * q}, l${4 * q + 1}, l${4 * q + 2}, l${4 * q + 3});`,
        );
      for (let q = 0; q < 8; q++)
        lines.push(
          perRow(mt, (r) => {
            const x = input.read(r, `c * 8 + ${q}`, `x${r}_${q}`);
            return `${x.decl} acc${r} = acc${r} + dot(${x.value}, lv${q});`;
          }),
        );
      loop = `
            let chunks = uniforms.k / 32;
            for (var c = lane; c < chunks; c = c + ${LANES}) {
              let w0 = (s * chunks + c) * ${bits};
              ${lines.join('\n              ')}
            }`;
    }
    const sums = rms ? 2 * mt : mt; // acc{r} at r, ss{r} at mt + r
    const red = (i: number | string, at: string) => `red[${i} * ${WG} + ${at}]`;
    const fill = this.pairs
      ? `lutS[e] = vec2<f32>(lut[at + i32(j & ${mask}u)], lut[at + i32(j >> ${bits}u)]);`
      : 'lutS[e] = lut[at + i32(j)];';
    const scaled = (v: string) =>
      rms
        ? `(${v}) * inverseSqrt(${red(`(${mt} + lane)`, 'base')} / f32(uniforms.k) + uniforms.eps)`
        : v;
    const value = `scales[s] * ${scaled(red('lane', 'base'))}`;
    return `
      var<workgroup> red : array<f32, ${WG * sums}>;
      var<workgroup> lutS : array<${this.pairs ? 'vec2<f32>' : 'f32'}, ${ROWS * per * copies}>;
      fn main(index : i32) {
        let tid = i32(localIndex);
        let lane = tid % ${LANES};
        let slot = tid / ${LANES};
        let base = slot * ${LANES};
        let lb = slot * ${per};
        let m0 = i32(workgroupId.y) * ${mt};
        ${perRow(mt, (r) => `let xRow${r} = min(m0 + ${r}, uniforms.m - 1) * (uniforms.k / 4);`)}
        for (var it = 0; it < uniforms.passes; it++) {
          let first = (i32(workgroupId.x) + it * uniforms.grid) * ${ROWS};
          let s = first + slot;
          for (var e = tid; e < ${ROWS * per * copies}; e = e + ${WG}) {
            let at = rows[2 * min(first + e / ${per * copies}, uniforms.n - 1) + 1] * ${entries};
            let j = u32((e / ${copies}) % ${per});
            ${fill}
          }
          workgroupBarrier();
          ${perRow(mt, (r) => `var acc${r} = 0.0;${rms ? ` var ss${r} = 0.0;` : ''}`)}
          if (s < uniforms.n) {${loop}
          }
          ${perRow(mt, (r) => `${red(r, 'tid')} = acc${r};${rms ? ` ${red(mt + r, 'tid')} = ss${r};` : ''}`)}
          workgroupBarrier();
          for (var stride = ${LANES / 2}; stride > 0; stride = stride / 2) {
            if (lane < stride) {
              ${Array.from({ length: sums }, (_, i) => `${red(i, 'tid')} = ${red(i, 'tid')} + ${red(i, 'tid + stride')};`).join('\n              ')}
            }
            workgroupBarrier();
          }
          if (s < uniforms.n && lane < ${mt} && m0 + lane < uniforms.m) {
            let oi = (m0 + lane) * uniforms.n + rows[2 * s];
            setOutputAtIndex(oi, ${fusion.residual ? `${value} + residual[oi]` : value});
          }
          workgroupBarrier();
        }
      }`;
  }
}
