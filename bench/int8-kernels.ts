// The int8 tensor-core GEMM bench's variant lists and shapes. The WGSL generator and the tile
// arithmetic live in the webgpu plugin (packages/backend-webgpu/src/int8-wgsl.ts, imported without
// loading tfjs), whose EdkmInt8MatMul kernel runs one of these variants; they are re-exported here
// for bench/int8.ts and tests/int8-bench.test.ts.
import { type Int8KernelSpec, spec } from '@edkm/backend-webgpu/int8-wgsl';

export * from '@edkm/backend-webgpu/int8-wgsl';

/**
 * Round 1 (bench/results/h200-2026-12-03/int8-call5.json): probe, direct and staged kernels.
 * The winner was staged1-2x2sg-4x4-k32-p16-g8 (239 TOPS at 8192³); the double-buffered kernels
 * (dynamic buffer index `t & 1`) were 2–6× slower; `direct` at most 59. `--round 1` runs these.
 */
export const int8VariantsRound1: Int8KernelSpec[] = [
  spec({ kind: 'probe', group: 0 }), // the probe's kernel: 64×64 per 32-lane workgroup
  // one subgroup per workgroup, fragments from storage
  spec({ kind: 'direct', group: 0 }),
  spec({ kind: 'direct', group: 8 }),
  spec({ kind: 'direct', tm: 2, tn: 4 }),
  spec({ kind: 'direct', tm: 4, tn: 8, fragN: 8 }),
  spec({ kind: 'direct', tm: 8, tn: 4 }), // 256 accumulator registers a lane: expect spills
  // workgroup-memory slices, one at a time
  spec({ stages: 1, bk: 32 }),
  spec({ stages: 1, bk: 64 }),
  spec({ stages: 1, bk: 64, pad: 0 }),
  spec({ stages: 1, bk: 128 }),
  spec({ stages: 1, sx: 4, bk: 64 }),
  // double buffered (register prefetch of the next slice)
  spec({ stages: 2, bk: 32 }),
  spec({ stages: 2, bk: 64 }),
  spec({ stages: 2, bk: 64, group: 0 }),
  spec({ stages: 2, bk: 64, sgid: 'index' }),
  spec({ stages: 2, bk: 128 }),
  spec({ stages: 2, sx: 4, bk: 32 }), // 128×256
  spec({ stages: 2, sy: 4, bk: 32 }), // 256×128
  spec({ stages: 2, sx: 4, bk: 64 }),
  spec({ stages: 2, sx: 4, tn: 2, bk: 64 }), // 128×128 over 8 subgroups of 64×32
  spec({ stages: 2, sy: 4, tm: 2, bk: 64 }), // 128×128 over 8 subgroups of 32×64
  spec({ stages: 2, sy: 4, sx: 4, tm: 2, tn: 2, bk: 64 }), // 16 subgroups of 32×32
  spec({ stages: 2, tn: 8, fragN: 8, bk: 64 }), // 16×8 fragments, 64×64 per subgroup
  spec({ stages: 2, tm: 2, bk: 64 }), // 64×128: twice the workgroups
  // the same shapes in 32 KiB of workgroup memory or less (if the device offers no more)
  spec({ stages: 1, sx: 4, bk: 32 }), // 128×256
  spec({ stages: 2, sx: 4, tn: 2, bk: 32 }),
  spec({ stages: 2, sy: 4, sx: 4, tm: 2, tn: 2, bk: 32 }),
];

/**
 * Round 2 (the default): around round 1's winner W = staged1-2x2sg-4x4-k32-p16-g8, each variant
 * testing one idea. Why was double buffering slow? (the control, the same with constant buffer
 * offsets, two buffers without prefetch.) Does hiding the storage loads' latency pay? (register
 * prefetch into one buffer, 1 or 2 slices ahead.) Occupancy (8 subgroups of 64×32), larger
 * workgroups (128×256, 256×128), 16×8 fragments, the tile order's group width.
 */
export const int8VariantsRound2: Int8KernelSpec[] = [
  spec({ stages: 1, bk: 32 }), // W, the baseline
  spec({ stages: 1, bk: 32, group: 4 }),
  spec({ stages: 1, bk: 32, group: 16 }),
  spec({ stages: 1, bk: 32, tn: 8, fragN: 8 }), // 64×64 a subgroup in 16×8 fragments
  spec({ stages: 1, bk: 32, sx: 4, tn: 2 }), // 128×128 over 8 subgroups of 64×32 (64 acc regs)
  spec({ stages: 1, bk: 32, sy: 4 }), // 256×128 over 8 subgroups
  // register prefetch of the next slice, one buffer, two barriers a slice
  spec({ stages: 1, bk: 32, ahead: 1 }),
  spec({ stages: 1, bk: 64, ahead: 1 }),
  spec({ stages: 1, bk: 32, ahead: 1, sx: 4, tn: 2 }),
  spec({ stages: 1, bk: 32, ahead: 1, sx: 4 }), // 128×256
  // two buffers: round 1's kernel (control, 73 TOPS), then constant buffer offsets (unrolled by 2)
  spec({ stages: 2, bk: 32 }),
  spec({ stages: 2, bk: 32, unroll: true }),
  spec({ stages: 2, bk: 32, ahead: 0, unroll: true }), // no prefetch, one barrier a slice
  spec({ stages: 2, bk: 64, ahead: 0, unroll: true }),
  spec({ stages: 2, bk: 32, unroll: true, sx: 4, tn: 2 }), // 8 subgroups (round 1: 106 TOPS)
  spec({ stages: 2, bk: 32, ahead: 2, unroll: true, sx: 4, tn: 2 }), // two slices ahead
];

const a1 = { stages: 1, ahead: 1 } as const;

/**
 * Round 3 (bench/results/h200-2026-12-03/int8-round3-s3-6.json, -s3-7.json): one A fragment against
 * many B fragments per subgroup, and longer K slices. Winner W, the plugin's INT8_MATMUL_SPEC since:
 * 8 subgroups of 16×128 with 128-byte slices, 374.6 TOPS at 8192³ and 371.1 at 2048×4096×11008
 * (round 2's W 278.6 / 275.9). The rest: what the next round tries around it (issue 25 asks 500).
 */
export const int8VariantsRound3: Int8KernelSpec[] = [
  spec({ ...a1, bk: 128, sy: 8, sx: 1, tm: 1, tn: 8 }), // W
  spec({ ...a1, bk: 64, sy: 8, sx: 1, tm: 2, tn: 8 }), // 256×128: 368.2 / 371.1
  spec({ ...a1, bk: 64, sy: 8, sx: 1, tm: 1, tn: 16 }), // 128×256: 363.4 / 360.1
  spec({ ...a1, bk: 128, sy: 8, sx: 1, tm: 1, tn: 8, group: 16 }),
  spec({ ...a1, bk: 128, sy: 4, sx: 2, tm: 2, tn: 4 }), // 8 subgroups of 32×64
  spec({ ...a1, bk: 64, sy: 16, sx: 1, tm: 1, tn: 8 }), // 16 subgroups (512 threads), 256×128
  spec({ ...a1, bk: 128, sy: 8, sx: 1, tm: 1, tn: 8, pad: 32 }),
  spec({ stages: 2, unroll: true, bk: 64, sy: 8, sx: 1, tm: 1, tn: 8 }), // one barrier a slice
  spec({ stages: 2, unroll: true, ahead: 0, bk: 64, sy: 8, sx: 1, tm: 1, tn: 8 }),
];

const a0 = { stages: 1, ahead: 0 } as const;

/**
 * Round 4 (bench/results/h200-2026-12-03/int8-round4-s4-1.json): none passed W (374.9 TOPS at
 * 8192³ with group 16, W 371.3 at 2048×4096×11008; 8 subgroups of 32×64 331.5; 4 subgroups of
 * 32×128 234.8; 64×64 a subgroup 114–144; pad 32 240.8). Fewer workgroup-memory fragment loads per multiply. W's subgroup loads 1 A and 8 B
 * fragments for 8 products (1.13 a product); 2×8 (368 TOPS at 64-byte slices against W's 297 at
 * the same slices) needs 55 KiB at 128-byte slices, over the device's 48. So: 4×4 and 2×4 blocks
 * a subgroup at 128-byte slices (0.5 and 0.75 loads a product), with and without the register
 * prefetch (a 4×4 block's 128 accumulator registers and 16 prefetch vec4s may not fit), and round
 * 3's untried ideas (group 16, pad 32, two buffers unrolled).
 */
export const int8VariantsRound4: Int8KernelSpec[] = [
  spec({ ...a1, bk: 128, sy: 8, sx: 1, tm: 1, tn: 8 }), // W
  spec({ ...a1, bk: 128, sy: 4, sx: 2, tm: 2, tn: 4 }), // 8 subgroups of 32×64, 128×128
  spec({ ...a0, bk: 128, sy: 4, sx: 2, tm: 2, tn: 4 }),
  spec({ ...a1, bk: 128, sy: 2, sx: 4, tm: 4, tn: 2 }), // 8 subgroups of 64×32
  spec({ ...a0, bk: 128, sy: 2, sx: 2, tm: 4, tn: 4 }), // 4 subgroups of 64×64, 128×128
  spec({ ...a1, bk: 128, sy: 2, sx: 2, tm: 4, tn: 4 }),
  spec({ ...a1, bk: 128, sy: 4, sx: 1, tm: 2, tn: 8 }), // 4 subgroups of 32×128, 128×128
  spec({ ...a0, bk: 128, sy: 4, sx: 1, tm: 2, tn: 8 }),
  spec({ ...a1, bk: 128, sy: 8, sx: 1, tm: 1, tn: 8, group: 16 }),
  spec({ ...a1, bk: 128, sy: 8, sx: 1, tm: 1, tn: 8, pad: 32 }),
];

/**
 * Round 5 (bench/results/h200-2026-12-04/int8-sweep-*-s8-*.json, calls s8-1 … s8-3): workgroup
 * memory in per-subgroup blocks (`blocks`), every fragment load at a constant offset, so that Dawn's
 * robustness proves it in bounds when compiling instead of checking it at run time. With robustness
 * on: W 377.2 → 447.6 TOPS at 8192³ with blocks, 8 subgroups of 32×128 369.7 → 474.8, 8 subgroups
 * 4×2 of 64×64 497.7, and the winner, the plugin's INT8_MATMUL_SPEC since, 4 subgroups 2×2 of 64×64
 * with 64-byte slices: 520.4 (523.1 at 2048×4096×11008; 525.5 / 518.0 without robustness). Around
 * it: groups of 8 / 32 520.8 / 514.4, pad 48 310.5, 32-byte slices 373.4, 128-byte 511.5, two
 * buffers unrolled 316.0, 2×1 and 1×2 subgroups 407–409, 16 subgroups 4×4 of 64×64 135.6.
 */
export const int8VariantsRound5: Int8KernelSpec[] = [
  spec({ ...a1, bk: 64, sy: 2, sx: 2, tm: 4, tn: 4, group: 16, blocks: true }), // the winner
  spec({ ...a1, bk: 128, sy: 8, sx: 1, tm: 1, tn: 8 }), // round 3's W
  spec({ ...a1, bk: 128, sy: 8, sx: 1, tm: 1, tn: 8, blocks: true }),
  spec({ ...a1, bk: 64, sy: 8, sx: 1, tm: 2, tn: 8, group: 16 }), // the unrobust tile of s7-8
  spec({ ...a1, bk: 64, sy: 8, sx: 1, tm: 2, tn: 8, group: 16, blocks: true }),
  spec({ ...a1, bk: 64, sy: 4, sx: 2, tm: 4, tn: 4, group: 16, blocks: true }),
  spec({ ...a1, bk: 64, sy: 2, sx: 2, tm: 4, tn: 4, group: 8, blocks: true }),
  spec({ ...a1, bk: 128, sy: 2, sx: 2, tm: 4, tn: 4, group: 16, blocks: true }),
];

/** The variants bench/int8.ts runs by default (`--round 1` … `4` for the earlier lists). */
export const int8Variants: Int8KernelSpec[] = int8VariantsRound5;

/** M×N×K: a square pair, and a LLaMA-7B layer's linear shapes over 2048 tokens (gate/up, down, q/k/v/o). */
export const INT8_TIMED_SHAPES: [number, number, number][] = [
  [4096, 4096, 4096],
  [8192, 8192, 8192],
  [2048, 11008, 4096],
  [2048, 4096, 11008],
  [2048, 4096, 4096],
];
/** Shapes checked entry by entry against the host (every default tile divides them). */
export const INT8_CHECK_SHAPES: [number, number, number][] = [
  [256, 256, 256],
  [1024, 768, 640],
];
