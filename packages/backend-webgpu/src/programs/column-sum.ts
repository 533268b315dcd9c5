import { FlatProgram } from './base';

/** out[c] = Σ_r partials[r, c] (in row order: deterministic). */
export class ColumnSumProgram extends FlatProgram {
  variableNames = ['partials'];
  uniforms = 'rows : i32, cols : i32,';
  shaderKey = 'edkm_column_sum';
  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var s = 0.0;
          for (var r = 0; r < uniforms.rows; r = r + 1) { s = s + partials[r * uniforms.cols + index]; }
          setOutputAtIndex(index, s);
        }
      }`;
  }
}
