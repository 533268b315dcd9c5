import { int8PackedShape, type tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { linearGroupWgsl, linearGroups } from '../grid';
import { allocate, runRaw, uniformBlock } from '../raw';
import { INT8_BYTE_WGSL, workgroupMaxWgsl } from './int8-quantize-rows';

const THREADS = 256;

/**
 * EdkmPaletteInt8 (core's int8-linear.ts defines the values): one workgroup per stored row finds
 * the largest |scale · LUT entry| of the row's group, then each thread packs four weights a word
 * into the row's output position: index read from the packed stream (spanning two words where it
 * crosses one), LUT entry × scale × 127 / max, rounded.
 */
const wgsl = (bits: number, d: number) => `
@group(0) @binding(0) var<storage, read> codes : array<u32>;
@group(0) @binding(1) var<storage, read> lut : array<f32>;
@group(0) @binding(2) var<storage, read> rows : array<i32>;
@group(0) @binding(3) var<storage, read> scales : array<f32>;
@group(0) @binding(4) var<storage, read_write> b : array<i32>;
@group(0) @binding(5) var<storage, read_write> sb : array<f32>;
struct U { n : u32, k : u32, words : u32, rows : u32 };
@group(0) @binding(6) var<uniform> u : U;
var<workgroup> red : array<f32, ${THREADS}>;
${INT8_BYTE_WGSL}

fn indexAt(i : u32) -> u32 {
  let p = i * ${bits}u;
  let w = p >> 5u;
  let s = p & 31u;
  var v = codes[w] >> s;
  if (s + ${bits}u > 32u) { v = v | (codes[w + 1u] << (32u - s)); }
  return v & ${(1 << bits) - 1}u;
}

@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(num_workgroups) nwg : vec3<u32>, @builtin(local_invocation_index) tid : u32) {
  let s = ${linearGroupWgsl()};
  if (s >= u.rows) { return; }
  if (s >= u.n) { // a padding row (after every output row): zeros
    for (var w = tid; w < u.words; w = w + ${THREADS}u) { b[s * u.words + w] = 0; }
    return;
  }
  let o = u32(rows[2u * s]);
  let base = u32(rows[2u * s + 1u]) * ${(1 << bits) * d}u;
  let sc = scales[s];
  var a = 0.0;
  for (var j = tid; j < ${(1 << bits) * d}u; j = j + ${THREADS}u) { a = max(a, abs(sc * lut[base + j])); }
  ${workgroupMaxWgsl(THREADS)}
  let on = amax > 0.0;
  let inv = select(0.0, 127.0 / amax, on);
  if (tid == 0u) { sb[o] = select(0.0, amax / 127.0, on); }
  let first = s * (u.k / ${d}u);
  for (var w = tid; w < u.words; w = w + ${THREADS}u) {
    var q = 0u;
    for (var j = 0u; j < 4u; j = j + 1u) {
      let t = 4u * w + j;
      if (t < u.k) {
        let e = lut[base + indexAt(first + t / ${d}u) * ${d}u + t % ${d}u];
        let v = clamp(round((sc * e) * inv), -127.0, 127.0);
        q = q | byte(v, j);
      }
    }
    b[o * u.words + w] = bitcast<i32>(q);
  }
}`;

export const paletteInt8: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { codes, lut, rows, scales } = inputs as Record<string, tf.TensorInfo>;
  const a = attrs as { bits: number; clusterDim: number; k: number; padRows: number; padK: number };
  const { bits, clusterDim: d, k } = a;
  const n = rows.shape[0];
  const [padded, words] = int8PackedShape(n, k, { rows: a.padRows, k: a.padK });
  const b = allocate(gpu, [padded, words], 'int32');
  const sb = allocate(gpu, [n]);
  if (padded === 0) return [b, sb];
  runRaw(gpu, {
    key: `EdkmPaletteInt8:${bits}_${d}`,
    wgsl: () => wgsl(bits, d),
    tensors: [codes, lut, rows, scales, b, sb],
    uniforms: uniformBlock([
      ['u', n],
      ['u', k],
      ['u', words],
      ['u', padded],
    ]),
    groups: linearGroups(padded, 'EdkmPaletteInt8'),
  });
  return [b, sb];
};
