import type { CodeAttrs, tf } from '@edkm/core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { EdkmProgram, FlatProgram, ZerosProgram, codeFunction } from '../programs';

/**
 * EdkmScatterAddByCode on WebGPU, deterministic: every value is converted to a 64-bit fixed-point
 * number (a power-of-two scale chosen from max |v| · N, so that no sum can overflow), the 64-bit
 * sums are accumulated exactly with 32-bit integer atomics (low word, then the high word plus the
 * low word's carry) and converted back to float32 at the end. Integer addition is associative,
 * so the result does not depend on the order in which invocations run: the same inputs give the
 * same bits on every run (float atomics would not). Resolution: 2^-61 · max |v| · N per sum.
 */

/** WGSL: the scale exponent e (values are multiplied by 2^e) from the bits of max |v| and N. */
const scaleExponent = `
  fn edkmFixedExponent(maxBits : i32, n : i32) -> i32 {
    let m = bitcast<f32>(maxBits) * f32(n);
    if (!(m > 0.0)) { return 0; }
    return clamp(61 - frexp(m).exp, -120, 120);
  }`;

/** result[0] = the bits of max |v| (non-negative floats order as their bits). */
class MaxAbsBitsProgram extends EdkmProgram {
  variableNames = ['values'];
  uniforms = 'n : i32, groups : i32,';
  atomic = true;
  shaderKey = 'edkm_max_abs_bits';
  constructor(groups: number) {
    super([1], [groups, 1, 1]);
  }
  getUserCode(): string {
    return `
      var<workgroup> red : array<u32, 256>;
      fn main(index : i32) {
        let tid = i32(localIndex);
        var m = 0u;
        for (var i = i32(workgroupId.x) * 256 + tid; i < uniforms.n; i = i + uniforms.groups * 256) {
          m = max(m, bitcast<u32>(abs(values[i])));
        }
        red[tid] = m;
        workgroupBarrier();
        for (var stride = 128; stride > 0; stride = stride / 2) {
          if (tid < stride) { red[tid] = max(red[tid], red[tid + stride]); }
          workgroupBarrier();
        }
        if (tid == 0) { atomicMax(&result[0], i32(red[0])); }
      }`;
  }
}

/** parts[at] (low words) and parts[65536·K + at] (high words) += fixed(values[i, c]), at = code(x_i)·K + c. */
class FixedAccumulateProgram extends FlatProgram {
  variableNames = ['values', 'x', 'maxBits'];
  uniforms = 'k : i32, n : i32,';
  atomic = true;
  override size = false;
  shaderKey: string;
  constructor(
    n: number,
    private readonly k: number,
    private readonly dtype: 'bf16' | 'fp16',
  ) {
    super([2 * 65536 * k]);
    this.shaderKey = `edkm_scatter_add_by_code_fixed_${dtype}`;
    this.dispatchLayout = { x: [0] };
    this.dispatch = [Math.ceil((n * k) / 64), 1, 1];
    if (this.dispatch[0] > 65535) {
      const x = 32768;
      this.dispatch = [x, Math.ceil(this.dispatch[0] / x), 1];
    }
  }
  getUserCode(): string {
    return `
      ${codeFunction(this.dtype)}
      ${scaleExponent}
      fn main(index0 : i32) {
        let index = i32((workgroupId.y * numWorkgroups.x + workgroupId.x) * 64u + localIndex);
        if (index < uniforms.n * uniforms.k) {
          let i = index / uniforms.k;
          let col = index - i * uniforms.k;
          let at = edkmCode(x[i]) * uniforms.k + col;
          let e = edkmFixedExponent(i32(maxBits[0]), uniforms.n);
          let t = ldexp(values[index], e);
          let hiF = floor(t / 4294967296.0);
          let lo = u32(t - hiF * 4294967296.0);
          let hi = i32(hiF);
          let old = bitcast<u32>(atomicAdd(&result[at], bitcast<i32>(lo)));
          let carry = select(0, 1, old + lo < old);
          atomicAdd(&result[65536 * uniforms.k + at], hi + carry);
        }
      }`;
  }
}

/** out[at] = (hi · 2^32 + lo) / 2^e, converted without cancellation (negated when negative). */
class FixedToFloatProgram extends FlatProgram {
  variableNames = ['parts', 'maxBits'];
  uniforms = 'n : i32,';
  shaderKey = 'edkm_fixed_to_float';
  getUserCode(): string {
    return `
      ${scaleExponent}
      fn main(index : i32) {
        if (index < uniforms.size) {
          var lo = bitcast<u32>(parts[index]);
          var hi = parts[uniforms.size + index];
          var sign = 1.0;
          if (hi < 0) {
            sign = -1.0;
            lo = ~lo + 1u;
            hi = ~hi + select(0, 1, lo == 0u);
          }
          let total = sign * (f32(hi) * 4294967296.0 + f32(lo));
          setOutputAtIndex(index, ldexp(total, -edkmFixedExponent(i32(maxBits[0]), uniforms.n)));
        }
      }`;
  }
}

export const scatterAddByCode: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { values, x } = inputs as { values: tf.TensorInfo; x: tf.TensorInfo };
  const { dtype } = attrs as unknown as CodeAttrs;
  const [n, k] = values.shape;
  const total = n * k;
  const groups = Math.max(1, Math.min(1024, Math.ceil(total / (256 * 8))));
  const maxBits = gpu.runWebGPUProgram(new ZerosProgram([1]), [], 'int32');
  gpu.runWebGPUProgram(
    new MaxAbsBitsProgram(groups),
    [values],
    'int32',
    [
      { type: 'int32', data: [total] },
      { type: 'int32', data: [groups] },
    ],
    maxBits,
  );
  const parts = gpu.runWebGPUProgram(new ZerosProgram([2 * 65536 * k]), [], 'int32');
  gpu.runWebGPUProgram(
    new FixedAccumulateProgram(n, k, dtype),
    [values, x, maxBits],
    'int32',
    [
      { type: 'int32', data: [k] },
      { type: 'int32', data: [n] },
    ],
    parts,
  );
  const out = gpu.runWebGPUProgram(
    new FixedToFloatProgram([65536, k]),
    [parts, maxBits],
    'float32',
    [{ type: 'int32', data: [n] }],
  );
  gpu.disposeData(parts.dataId);
  gpu.disposeData(maxBits.dataId);
  return out;
};
