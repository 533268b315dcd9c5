import { DeviceLimitError, InvalidArgumentError, type tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import {
  INT8_MATMUL_SPEC,
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
 *    default: 128×128 tiles, 32-byte K slices), used when the device has an i8 16×N×32 configuration
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
}

let device: Int8Device = { subgroupMatrix: false, fragNs: [], maxWorkgroupStorage: 0 };
let route: Int8Route = 'auto';
let chosen: Int8KernelSpec | undefined;

export function setInt8Device(d: Int8Device): void {
  device = d;
}

/** 'auto' (tensor cores where the device has them), 'plain' (always the plain loop), 'emulate'. */
export function setInt8Route(r: Int8Route): void {
  route = r;
}

/**
 * The tensor-core kernel's variant (fields of Int8KernelSpec over INT8_MATMUL_SPEC; undefined: the
 * default). EDKM_INT8_SPEC (JSON, e.g. '{"stages":2,"unroll":true}') sets it in Node.
 */
export function setInt8MatMulSpec(over?: Partial<Int8KernelSpec>): void {
  chosen = over ? int8Spec({ ...INT8_MATMUL_SPEC, ...over }) : undefined;
}

function currentSpec(): Int8KernelSpec {
  if (!chosen) {
    const env = typeof process !== 'undefined' ? process.env?.EDKM_INT8_SPEC : undefined;
    if (env) {
      try {
        setInt8MatMulSpec(JSON.parse(env) as Partial<Int8KernelSpec>);
      } catch (e) {
        throw new InvalidArgumentError(`EDKM_INT8_SPEC is not a kernel spec: ${String(e)}`);
      }
    }
  }
  return chosen ?? INT8_MATMUL_SPEC;
}

/** Which form an M×N×K product takes on this device: 'tensor-core', 'emulate' or 'plain'. */
export function int8MatMulRoute(m: number, n: number, k: number): 'tensor-core' | Int8Route {
  if (route === 'plain' || m * n === 0 || k === 0) return 'plain';
  const s = currentSpec();
  if (route === 'auto' && !(device.subgroupMatrix && device.fragNs.includes(s.fragN)))
    return 'plain';
  const plan = planInt8Kernel(s, { m: 16, n: s.fragN, k: 32 });
  if (plan.smemBytes > device.maxWorkgroupStorage || int8ShapeMisfit(plan, m, n, k)) return 'plain';
  return route === 'emulate' ? 'emulate' : 'tensor-core';
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
    const s = currentSpec();
    const emulate = form === 'emulate';
    const frag = { m: 16, n: s.fragN, k: 32 };
    const plan = planInt8Kernel(s, frag);
    const [gx, gy] = int8Grid(plan, m, n);
    runRaw(gpu, {
      key: `EdkmInt8MatMul:${specName(s)}${emulate ? ':emulate' : ''}`,
      wgsl: () => int8GemmWgsl(s, { frag, emulate }),
      tensors: [a, b, c],
      uniforms: int8Dims(plan, m, n, k).buffer as ArrayBuffer,
      groups: [gx, gy, 1],
    });
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
