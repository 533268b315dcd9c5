import { FlatProgram } from './base';

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
