import { EdkmProgram } from './base';
import { codeFunction } from './code';

/**
 * counts[copy, code(x_i)] += 1 over a grid-stride share of the elements, copy = workgroup mod
 * copies: a hot code's atomics spread over `copies` addresses instead of serialising on one
 * (HistogramMergeProgram adds the copies; integer sums, so the result is exact).
 */
export class CodeHistogramCopiesProgram extends EdkmProgram {
  variableNames = ['x'];
  uniforms = 'n : i32, groups : i32,';
  atomic = true;
  shaderKey: string;
  constructor(
    groups: number,
    private readonly copies: number,
    private readonly dtype: 'bf16' | 'fp16',
  ) {
    super([copies * 65536], [groups, 1, 1]);
    this.shaderKey = `edkm_code_histogram_copies_${dtype}_${copies}`;
  }
  getUserCode(): string {
    return `
      ${codeFunction(this.dtype)}
      fn main(index : i32) {
        let group = i32(workgroupId.x);
        let base = (group % ${this.copies}) * 65536;
        for (var i = group * 256 + i32(localIndex); i < uniforms.n; i = i + uniforms.groups * 256) {
          atomicAdd(&result[base + edkmCode(x[i])], 1);
        }
      }`;
  }
}
