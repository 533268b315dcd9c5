import { DeviceLimitError, InvalidArgumentError, type tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import {
  INT8_MATMUL_SPEC,
  INT8_MATMUL_SPEC_UNROBUST,
  type Int8KernelSpec,
  type SubgroupMatrixAdapterInfo,
  int8Dims,
  int8GemmWgsl,
  int8Grid,
  int8ShapeMisfit,
  spec as int8Spec,
  planInt8Kernel,
  specName,
} from '../int8-wgsl';
import { allocate, runRaw, uniformBlock } from '../raw';

/**
 * EdkmInt8MatMul, C = A·Bᵀ from packed int8 rows (four to an i32 word) into int32, in two forms:
 *  - tensor cores through subgroup matrices (`chromium-experimental-subgroup-matrix`, opt-in with
 *    EDKM_WEBGPU_UNSAFE=1 in Node): the generated kernel of `src/int8-wgsl.ts` (INT8_MATMUL_SPEC by
 *    default: 128×128 tiles, 64-byte K slices), used when the device has an i8 16×N×32 configuration
 *    and the shape is whole tiles (M and N multiples of the tile, K of the slice; other shapes take
 *    the plain form, not padded);
 *  - plain WGSL everywhere else: one invocation per output, the four bytes of each word
 *    sign-extended by shifts and multiplied in i32 (exact, wrapping like the tensor cores).
 * `setInt8Route('emulate')` runs the tiled kernel with the subgroup-matrix calls written in plain
 * WGSL (tests its tiling, bindings and grid on an adapter without them, e.g. lavapipe).
 */
export type Int8Route = 'auto' | 'plain' | 'emulate';

interface Int8Device {
  /** subgroup matrices enabled on the device (and the subgroups feature) */
  subgroupMatrix: boolean;
  /** N of the adapter's i8 × i8 → i32 16×N×32 configurations */
  fragNs: number[];
  maxWorkgroupStorage: number;
  /** Dawn's robustness on (the default; off where the user gave `disable_robustness`) */
  robust?: boolean;
}

let device: Int8Device = { subgroupMatrix: false, fragNs: [], maxWorkgroupStorage: 0 };
let route: Int8Route = 'auto';

export function setInt8Device(d: Int8Device): void {
  device = d;
}

/** What setInt8Device was last given. */
export function int8Device(): Int8Device {
  return { ...device };
}

/** 'auto' (tensor cores where the device has them), 'plain' (always the plain loop), 'emulate'. */
export function setInt8Route(r: Int8Route): void {
  route = r;
}

/**
 * A kernel's variant: its default, a caller's fields over it, or an environment variable's (JSON
 * Int8KernelSpec fields, read in Node until one is set), with its K slices shortened to fit the
 * device's workgroup memory.
 */
class SpecChoice {
  private chosen: Int8KernelSpec | undefined;
  constructor(
    private readonly defaults: () => Int8KernelSpec,
    private readonly env: string,
  ) {}
  private get base(): Int8KernelSpec {
    return this.defaults();
  }
  set(over?: Partial<Int8KernelSpec>): void {
    this.chosen = over ? int8Spec({ ...this.base, ...over, split: this.base.split }) : undefined;
  }
  current(): Int8KernelSpec {
    if (!this.chosen) {
      const v = typeof process !== 'undefined' ? process.env?.[this.env] : undefined;
      if (v) {
        try {
          this.set(JSON.parse(v) as Partial<Int8KernelSpec>);
        } catch (e) {
          throw new InvalidArgumentError(`${this.env} is not a kernel spec: ${String(e)}`);
        }
      }
    }
    return fitting(this.chosen ?? this.base);
  }
}

/** The subgroup-matrix fragment a kernel multiplies: i8 16×N×32. */
const fragOf = (s: Int8KernelSpec) => ({ m: 16, n: s.fragN, k: 32 });

/**
 * `s`, or the same kernel with shorter K slices (halved down to 32 bytes) where the device has
 * less workgroup memory than `s` needs (lavapipe: 32 KiB; the defaults take 36 KiB).
 */
function fitting(s: Int8KernelSpec): Int8KernelSpec {
  let f = s;
  while (
    f.bk > 32 &&
    device.maxWorkgroupStorage > 0 &&
    planInt8Kernel(f, fragOf(f)).smemBytes > device.maxWorkgroupStorage
  )
    f = int8Spec({ ...f, bk: f.bk / 2 });
  return f;
}

/** The form kernel `s` takes for an M×N×K product on this device. */
function routeOf(s: Int8KernelSpec, m: number, n: number, k: number): 'tensor-core' | Int8Route {
  if (route === 'plain' || m * n === 0 || k === 0) return 'plain';
  if (route === 'auto' && !(device.subgroupMatrix && device.fragNs.includes(s.fragN)))
    return 'plain';
  const plan = planInt8Kernel(s, fragOf(s));
  if (plan.smemBytes > device.maxWorkgroupStorage || int8ShapeMisfit(plan, m, n, k)) return 'plain';
  return route === 'emulate' ? 'emulate' : 'tensor-core';
}

/** Kernel `s` (or its emulation) over the whole tiles of an M×N×K product, outputs among `tensors`. */
function runTiled(
  gpu: WebGPUBackend,
  name: string,
  s: Int8KernelSpec,
  emulate: boolean,
  tensors: tf.TensorInfo[],
  [m, n, k]: [number, number, number],
): void {
  const frag = fragOf(s);
  const plan = planInt8Kernel(s, frag);
  const [gx, gy] = int8Grid(plan, m, n);
  runRaw(gpu, {
    key: `${name}:${specName(s)}${emulate ? ':emulate' : ''}`,
    wgsl: () => int8GemmWgsl(s, { frag, emulate }),
    tensors,
    uniforms: int8Dims(plan, m, n, k).buffer as ArrayBuffer,
    groups: [gx, gy, 1],
  });
}

// the kernel with Dawn's robustness on, and where the user turned it off (the same tile since the
// blocks kernels: see INT8_MATMUL_SPEC_UNROBUST)
const gemmSpec = new SpecChoice(
  () => (device.robust === false ? INT8_MATMUL_SPEC_UNROBUST : INT8_MATMUL_SPEC),
  'EDKM_INT8_SPEC',
);

/** The tensor-core kernel's variant now (the default for this device, or the one set). */
export function int8MatMulSpec(): Int8KernelSpec {
  return gemmSpec.current();
}

/**
 * The tensor-core kernel's variant (fields of Int8KernelSpec over INT8_MATMUL_SPEC; undefined: the
 * default). EDKM_INT8_SPEC (JSON, e.g. '{"stages":2,"unroll":true}') sets it in Node.
 */
export function setInt8MatMulSpec(over?: Partial<Int8KernelSpec>): void {
  gemmSpec.set(over);
}

/** Which form an M×N×K product takes on this device: 'tensor-core', 'emulate' or 'plain'. */
export function int8MatMulRoute(m: number, n: number, k: number): 'tensor-core' | Int8Route {
  return routeOf(gemmSpec.current(), m, n, k);
}

const PLAIN = 16;
const plainWgsl = () => `
@group(0) @binding(0) var<storage, read> a : array<i32>;
@group(0) @binding(1) var<storage, read> b : array<i32>;
@group(0) @binding(2) var<storage, read_write> c : array<i32>;
struct U { m : u32, n : u32, words : u32, pad : u32 };
@group(0) @binding(3) var<uniform> u : U;

// the four int8 of x and y (sign-extended bytes), multiplied and added in i32
fn dot4(x : i32, y : i32) -> i32 {
  return ((x << 24u) >> 24u) * ((y << 24u) >> 24u) + ((x << 16u) >> 24u) * ((y << 16u) >> 24u)
    + ((x << 8u) >> 24u) * ((y << 8u) >> 24u) + (x >> 24u) * (y >> 24u);
}

@compute @workgroup_size(${PLAIN}, ${PLAIN})
fn main(@builtin(global_invocation_id) g : vec3<u32>) {
  let j = g.x;
  let i = g.y;
  if (i >= u.m || j >= u.n) { return; }
  var s = 0i;
  let ra = i * u.words;
  let rb = j * u.words;
  for (var w = 0u; w < u.words; w = w + 1u) { s = s + dot4(a[ra + w], b[rb + w]); }
  c[i * u.n + j] = s;
}`;

/** EdkmInt8MatMul: a [M, W] and b [N, W] int32 (packed int8) → [M, N] int32. */
export const int8MatMul: tf.KernelFunc = ({ inputs, backend }) => {
  const gpu = backend as WebGPUBackend;
  const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const [m, words] = a.shape;
  const n = b.shape[0];
  const k = 4 * words;
  const c = allocate(gpu, [m, n], 'int32');
  const form = int8MatMulRoute(m, n, k);
  if (form === 'tensor-core' || form === 'emulate') {
    runTiled(gpu, 'EdkmInt8MatMul', gemmSpec.current(), form === 'emulate', [a, b, c], [m, n, k]);
    return c;
  }
  if (m * n === 0) return c;
  const gy = Math.ceil(m / PLAIN);
  const gx = Math.ceil(n / PLAIN);
  if (gy > 65535 || gx > 65535)
    throw new DeviceLimitError(
      `EdkmInt8MatMul: a ${m}×${n} output is over the plain kernel's ${65535 * PLAIN} rows or columns`,
    );
  runRaw(gpu, {
    key: 'EdkmInt8MatMul:plain',
    wgsl: plainWgsl,
    tensors: [a, b, c],
    uniforms: uniformBlock([
      ['u', m],
      ['u', n],
      ['u', words],
    ]),
    groups: [gx, gy, 1],
  });
  return c;
};

/**
 * N of the adapter's i8 × i8 → i32 subgroup-matrix configurations of 16×N×32 that the kernel can
 * use: none unless the device has subgroup matrices and subgroups enabled and 32-lane subgroups.
 */
export function int8FragNs(info: GPUAdapterInfo | undefined, features: string[]): number[] {
  if (
    !features.includes('chromium-experimental-subgroup-matrix') ||
    !features.includes('subgroups')
  )
    return [];
  const i = info as SubgroupMatrixAdapterInfo | undefined;
  if (i?.subgroupMaxSize !== undefined && i.subgroupMaxSize !== 32) return [];
  return [...(i?.subgroupMatrixConfigs ?? [])]
    .filter(
      (c) =>
        c.componentType === 'i8' && c.resultComponentType === 'i32' && c.M === 16 && c.K === 32,
    )
    .map((c) => c.N);
}

/**
 * The split product's fused kernel (Int8KernelSpec.split): C = hi·hi and C2 = hi·lo + lo·hi in one
 * pass over the four int8 slices: 128×128 tiles over 8 subgroups 4×2 of 32×64 (two accumulator sets
 * of 2×4 each), 64-byte K slices (hi and lo: 128 bytes a workgroup-memory row), the next read
 * ahead, workgroup memory in per-subgroup blocks (constant fragment offsets: no run-time bounds
 * check under Dawn's robustness). On the H200 (bench/h200-split.sh, training's product against our
 * f32 GEMM, replayed, call s8-6): 3.03–3.39× (124.7–143.8 effective TFLOP/s); the previous default
 * (8 subgroups of 16×128, flat arrays) 2.39–2.64× in the same session (s8-5), with blocks 2.62–2.98×;
 * 2×4 subgroups of 64×32 2.84–3.42×, 32-byte slices 2.41–2.66×, 4 subgroups of 64×64 1.26–1.34×
 * (4×4 accumulators twice: spills); three separate products 1.75–1.92× (2026-12-03).
 * EDKM_INT8_SPLIT_SPEC (JSON, Int8KernelSpec fields) sets another.
 */
export const INT8_SPLIT_SPEC: Int8KernelSpec = int8Spec({
  stages: 1,
  bk: 64,
  ahead: 1,
  sy: 4,
  sx: 2,
  tm: 2,
  tn: 4,
  split: true,
  blocks: true,
});

const splitSpec = new SpecChoice(() => INT8_SPLIT_SPEC, 'EDKM_INT8_SPLIT_SPEC');

/** The fused split kernel's variant (fields over INT8_SPLIT_SPEC; undefined: the default). */
export function setInt8SplitSpec(over?: Partial<Int8KernelSpec>): void {
  splitSpec.set(over);
}

/** Whether the fused split kernel takes an M×N×K product here ('plain': it does not). */
export function int8SplitRoute(m: number, n: number, k: number): 'tensor-core' | Int8Route {
  return routeOf(splitSpec.current(), m, n, k);
}

/**
 * The split product's three int8 products in one dispatch: from the hi and lo slices of A [M, W]
 * and B [N, W] (packed int8), C = hi·hi and C2 = hi·lo + lo·hi, both [M, N] int32. Only where
 * int8SplitRoute is not 'plain'.
 */
export function int8SplitMatMul(
  gpu: WebGPUBackend,
  ahi: tf.TensorInfo,
  alo: tf.TensorInfo,
  bhi: tf.TensorInfo,
  blo: tf.TensorInfo,
): [tf.TensorInfo, tf.TensorInfo] {
  const [m, words] = ahi.shape;
  const n = bhi.shape[0];
  const k = 4 * words;
  const form = int8SplitRoute(m, n, k);
  if (form === 'plain')
    throw new InvalidArgumentError(
      `int8SplitMatMul: no fused kernel for ${m}×${n}×${k} here (int8SplitRoute is 'plain')`,
    );
  const c = allocate(gpu, [m, n], 'int32');
  const c2 = allocate(gpu, [m, n], 'int32');
  const tensors = [ahi, alo, bhi, blo, c, c2];
  runTiled(gpu, 'EdkmInt8SplitMatMul', splitSpec.current(), form === 'emulate', tensors, [m, n, k]);
  return [c, c2];
}
