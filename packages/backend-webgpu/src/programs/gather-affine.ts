import { FlatProgram } from './base';

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
