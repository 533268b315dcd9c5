import { FlatProgram } from './base';
import { codeFunction } from './code';

/** The four codes' table entries (one column) as a vec4. */
const lookup4 = (table: string, v: string) =>
  `vec4<f32>(${['x', 'y', 'z', 'w'].map((c) => `${table}[edkmCode(${v}.${c})]`).join(', ')})`;

/** out[i] = table[code(x[i])] for a one-column table, four weights per invocation. */
export class GatherByCodeVec4Program extends FlatProgram {
  variableNames = ['table', 'x'];
  variableComponents = [1, 4];
  shaderKey: string;
  constructor(
    n: number,
    private readonly dtype: 'bf16' | 'fp16',
  ) {
    super([n, 1]);
    this.fourPerInvocation(n);
    this.shaderKey = `edkm_gather_by_code_vec4_${dtype}`;
  }
  getUserCode(): string {
    return `
      ${codeFunction(this.dtype)}
      fn main(index : i32) {
        if (index < uniforms.size) {
          let v = x[index];
          setOutputAtIndex(index, ${lookup4('table', 'v')});
        }
      }`;
  }
}
