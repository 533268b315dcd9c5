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
