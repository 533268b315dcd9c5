import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { webgpu_util } from '@tensorflow/tfjs-backend-webgpu';

/** A flat program: one invocation per output element, `index` is that element. */
abstract class FlatProgram implements WebGPUProgram {
  outputShape: number[];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  size = true;
  abstract variableNames: string[];
  abstract shaderKey: string;
  abstract getUserCode(): string;

  constructor(outputShape: number[]) {
    this.outputShape = outputShape;
    this.dispatchLayout = webgpu_util.flatDispatchLayout(outputShape);
    this.dispatch = webgpu_util.computeDispatch(
      this.dispatchLayout,
      outputShape,
      this.workgroupSize,
    );
  }
}

/** out[i, c] = table[indices[i], c], zero for out-of-range indices. */
export class GatherRowsProgram extends FlatProgram {
  variableNames = ['table', 'indices'];
  uniforms = 'numRows : i32, k : i32,';
  shaderKey = 'edkm_gather_rows';
  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let row = index / uniforms.k;
          let col = index - row * uniforms.k;
          let u = indices[row];
          var v = 0.0;
          if (u >= 0 && u < uniforms.numRows) {
            v = table[u * uniforms.k + col];
          }
          setOutputAtIndex(index, v);
        }
      }`;
  }
}

/** Fills the output with zeros (the accumulator of an atomic scatter). */
export class ZerosProgram extends FlatProgram {
  variableNames: string[] = [];
  shaderKey = 'edkm_zeros';
  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) { setOutputAtIndex(index, 0.0); }
      }`;
  }
}

/**
 * result[indices[i], c] += values[i, c]: one invocation per input element, float add through a
 * compare-exchange loop on the bits (WebGPU has no float atomics).
 */
export class ScatterAddRowsProgram extends FlatProgram {
  variableNames = ['values', 'indices'];
  uniforms = 'numRows : i32, k : i32, n : i32,';
  atomic = true;
  shaderKey = 'edkm_scatter_add_rows';
  override size = false;
  constructor(n: number, k: number, numRows: number) {
    super([numRows, k]);
    // dispatch over the inputs, not the output
    this.dispatchLayout = webgpu_util.flatDispatchLayout([n, k]);
    this.dispatch = webgpu_util.computeDispatch(this.dispatchLayout, [n, k], this.workgroupSize);
  }
  getUserCode(): string {
    return `
      fn atomicAddFloat(at : i32, value : f32) {
        var old = atomicLoad(&result[at]);
        loop {
          let next = bitcast<i32>(bitcast<f32>(old) + value);
          let swapped = atomicCompareExchangeWeak(&result[at], old, next);
          if (swapped.exchanged) { break; }
          old = swapped.old_value;
        }
      }
      fn main(index : i32) {
        if (index < uniforms.n * uniforms.k) {
          let i = index / uniforms.k;
          let col = index - i * uniforms.k;
          let u = indices[i];
          if (u >= 0 && u < uniforms.numRows) {
            atomicAddFloat(u * uniforms.k + col, values[index]);
          }
        }
      }`;
  }
}

/** out[i] = x[i] · table[idx[i]].x + table[idx[i]].y (0 for out-of-range indices). */
export class GatherAffineProgram extends FlatProgram {
  variableNames = ['table', 'indices', 'x'];
  uniforms = 'numRows : i32,';
  shaderKey = 'edkm_gather_affine';
  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let u = indices[index];
          var v = 0.0;
          if (u >= 0 && u < uniforms.numRows) {
            v = x[index] * table[2 * u] + table[2 * u + 1];
          }
          setOutputAtIndex(index, v);
        }
      }`;
  }
}

/** WGSL: the 16-bit code of a float32 (round to nearest even; NaN quieted), as in @edkm/core's half.ts. */
function codeFunction(dtype: 'bf16' | 'fp16'): string {
  if (dtype === 'bf16') {
    return `
      fn edkmCode(v : f32) -> i32 {
        let b = bitcast<u32>(v);
        if ((b & 0x7fffffffu) > 0x7f800000u) { return i32(((b >> 16u) | 0x40u) & 0xffffu); }
        return i32(((b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u) & 0xffffu);
      }`;
  }
  return `
      fn edkmCode(v : f32) -> i32 {
        let x = bitcast<u32>(v);
        let sign = (x >> 16u) & 0x8000u;
        let a = x & 0x7fffffffu;
        if (a >= 0x7f800000u) {
          return i32(sign | 0x7c00u | select(0u, 0x200u | ((a >> 13u) & 0x3ffu), a > 0x7f800000u));
        }
        if (a >= 0x477ff000u) { return i32(sign | 0x7c00u); }
        if (a < 0x38800000u) {
          if (a < 0x33000000u) { return i32(sign); }
          let shift = 126u - (a >> 23u);
          let m = (a & 0x7fffffu) | 0x800000u;
          let h = m >> shift;
          let rem = m & ((1u << shift) - 1u);
          let halfway = 1u << (shift - 1u);
          var r = h;
          if (rem > halfway || (rem == halfway && (h & 1u) == 1u)) { r = h + 1u; }
          return i32(sign | r);
        }
        let reb = a - 0x38000000u;
        return i32(sign | ((reb + 0x0fffu + ((reb >> 13u) & 1u)) >> 13u));
      }`;
}

/** counts[code(x[i])] += 1 (the output is zeroed first). */
export class CodeHistogramProgram extends FlatProgram {
  variableNames = ['x'];
  uniforms = 'n : i32,';
  atomic = true;
  override size = false;
  shaderKey: string;
  constructor(
    n: number,
    private readonly dtype: 'bf16' | 'fp16',
  ) {
    super([65536]);
    this.shaderKey = `edkm_code_histogram_${dtype}`;
    this.dispatchLayout = webgpu_util.flatDispatchLayout([n]);
    this.dispatch = webgpu_util.computeDispatch(this.dispatchLayout, [n], this.workgroupSize);
  }
  getUserCode(): string {
    return `
      ${codeFunction(this.dtype)}
      fn main(index : i32) {
        if (index < uniforms.n) { atomicAdd(&result[edkmCode(x[index])], 1); }
      }`;
  }
}

/** out[i, c] = table[code(x[i]), c]. */
export class GatherByCodeProgram extends FlatProgram {
  variableNames = ['table', 'x'];
  uniforms = 'k : i32,';
  shaderKey: string;
  constructor(
    outputShape: number[],
    private readonly dtype: 'bf16' | 'fp16',
  ) {
    super(outputShape);
    this.shaderKey = `edkm_gather_by_code_${dtype}`;
  }
  getUserCode(): string {
    return `
      ${codeFunction(this.dtype)}
      fn main(index : i32) {
        if (index < uniforms.size) {
          let row = index / uniforms.k;
          let col = index - row * uniforms.k;
          setOutputAtIndex(index, table[edkmCode(x[row]) * uniforms.k + col]);
        }
      }`;
  }
}

/** out[i] = g[i] · table[code(x[i])].x + table[code(x[i])].y. */
export class GatherAffineByCodeProgram extends FlatProgram {
  variableNames = ['table', 'x', 'g'];
  shaderKey: string;
  constructor(
    n: number,
    private readonly dtype: 'bf16' | 'fp16',
  ) {
    super([n]);
    this.shaderKey = `edkm_gather_affine_by_code_${dtype}`;
  }
  getUserCode(): string {
    return `
      ${codeFunction(this.dtype)}
      fn main(index : i32) {
        if (index < uniforms.size) {
          let c = edkmCode(x[index]);
          setOutputAtIndex(index, g[index] * table[2 * c] + table[2 * c + 1]);
        }
      }`;
  }
}

/** result[code(x[i]), c] += values[i, c] (float add by compare-exchange on the bits). */
export class ScatterAddByCodeProgram extends FlatProgram {
  variableNames = ['values', 'x'];
  uniforms = 'k : i32, n : i32,';
  atomic = true;
  override size = false;
  shaderKey: string;
  constructor(
    n: number,
    k: number,
    private readonly dtype: 'bf16' | 'fp16',
  ) {
    super([65536, k]);
    this.shaderKey = `edkm_scatter_add_by_code_${dtype}`;
    this.dispatchLayout = webgpu_util.flatDispatchLayout([n, k]);
    this.dispatch = webgpu_util.computeDispatch(this.dispatchLayout, [n, k], this.workgroupSize);
  }
  getUserCode(): string {
    return `
      ${codeFunction(this.dtype)}
      fn main(index : i32) {
        if (index < uniforms.n * uniforms.k) {
          let i = index / uniforms.k;
          let col = index - i * uniforms.k;
          let at = edkmCode(x[i]) * uniforms.k + col;
          let value = values[index];
          var old = atomicLoad(&result[at]);
          loop {
            let next = bitcast<i32>(bitcast<f32>(old) + value);
            let swapped = atomicCompareExchangeWeak(&result[at], old, next);
            if (swapped.exchanged) { break; }
            old = swapped.old_value;
          }
        }
      }`;
  }
}
