import { FlatProgram } from './base';
import { codeFunction } from './code';

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
