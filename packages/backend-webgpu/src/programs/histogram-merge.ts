import { FlatProgram } from './base';

/** out[code] = Σ_c parts[c, code] (int32). */
export class HistogramMergeProgram extends FlatProgram {
  variableNames = ['parts'];
  uniforms = 'copies : i32,';
  shaderKey = 'edkm_histogram_merge';
  constructor() {
    super([65536]);
  }
  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var s = 0;
          for (var c = 0; c < uniforms.copies; c = c + 1) { s = s + parts[c * 65536 + index]; }
          setOutputAtIndexI32(index, s);
        }
      }`;
  }
}
