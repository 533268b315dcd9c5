import { webgpu_util } from '@tensorflow/tfjs-backend-webgpu';
import { FlatProgram } from './base';

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
