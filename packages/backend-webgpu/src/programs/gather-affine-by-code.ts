import { FlatProgram } from './base';
import { codeFunction } from './code';

/**
 * out[i] = g[i] · table[s·code(x[i])] + table[s·code(x[i]) + 1] (s: the table's row stride), one
 * weight per invocation or four (vec4 loads and stores; n divisible by 4). In place (`inPlace`):
 * g is the output buffer itself, read and overwritten (its owner must not need it afterwards).
 */
export class GatherAffineByCodeProgram extends FlatProgram {
  variableNames: string[];
  variableComponents?: number[];
  uniforms = 'stride : i32,';
  shaderKey: string;
  constructor(
    n: number,
    private readonly dtype: 'bf16' | 'fp16',
    private readonly inPlace: boolean,
    private readonly width: 1 | 4,
  ) {
    super([n]);
    this.variableNames = inPlace ? ['table', 'x'] : ['table', 'x', 'g'];
    if (width === 4) {
      this.variableComponents = inPlace ? [1, 4] : [1, 4, 4];
      this.fourPerInvocation(n);
    }
    this.shaderKey = `edkm_gather_affine_by_code_${dtype}_${inPlace}_${width}`;
  }
  getUserCode(): string {
    const g = this.inPlace ? 'result[index]' : 'g[index]';
    const body =
      this.width === 4
        ? `let v = x[index];
          let c = vec4<i32>(edkmCode(v.x), edkmCode(v.y), edkmCode(v.z), edkmCode(v.w)) * uniforms.stride;
          let slope = vec4<f32>(table[c.x], table[c.y], table[c.z], table[c.w]);
          let offset = vec4<f32>(table[c.x + 1], table[c.y + 1], table[c.z + 1], table[c.w + 1]);
          setOutputAtIndex(index, ${g} * slope + offset);`
        : `let c = edkmCode(x[index]) * uniforms.stride;
          setOutputAtIndex(index, ${g} * table[c] + table[c + 1]);`;
    return `
      ${codeFunction(this.dtype)}
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${body}
        }
      }`;
  }
}
