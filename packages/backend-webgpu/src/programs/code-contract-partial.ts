import { EdkmProgram } from './base';
import { codeFunction } from './code';
import { reduceScratch, workgroupReduce } from './reduce';

/**
 * First pass of CodeContract: each workgroup sums table[row(code(x_i)), :] · g_i over a strided
 * share of the elements (C accumulators per thread), then reduces its threads in shared memory
 * and writes one partial row. A second pass (ColumnSumProgram) adds the partial rows, so the
 * whole reduction is deterministic.
 */
export class CodeContractPartialProgram extends EdkmProgram {
  variableNames = ['table', 'codeToRow', 'x', 'g'];
  uniforms = 'n : i32, groups : i32,';
  shaderKey: string;
  constructor(
    groups: number,
    private readonly c: number,
    private readonly dtype: 'bf16' | 'fp16',
  ) {
    super([groups, c], [groups, 1, 1]);
    this.shaderKey = `edkm_code_contract_${dtype}_${c}`;
  }
  getUserCode(): string {
    const c = this.c;
    // up to 64 columns: one register per column (a dynamically indexed private array would live
    // in slow local memory); more: the array
    const unrolled = c <= 64;
    const cols = Array.from({ length: c }, (_, j) => j);
    const declare = unrolled
      ? cols.map((j) => `var acc${j} = 0.0;`).join(' ')
      : `var acc : array<f32, ${c}>; for (var j = 0; j < ${c}; j = j + 1) { acc[j] = 0.0; }`;
    const accumulate = unrolled
      ? cols.map((j) => `acc${j} = acc${j} + table[base + ${j}] * gi;`).join('\n            ')
      : `for (var j = 0; j < ${c}; j = j + 1) { acc[j] = acc[j] + table[base + j] * gi; }`;
    const reduceOne = (value: string, col: string) =>
      workgroupReduce(value, `result[group * ${c} + ${col}] = red[0];`);
    const reduceAll = unrolled
      ? cols.map((j) => reduceOne(`acc${j}`, `${j}`)).join('')
      : `for (var j = 0; j < ${c}; j = j + 1) {${reduceOne('acc[j]', 'j')}\n        }`;
    return `
      ${codeFunction(this.dtype)}
      ${reduceScratch}
      fn main(index : i32) {
        let tid = i32(localIndex);
        let group = i32(workgroupId.x);
        ${declare}
        for (var i = group * 256 + tid; i < uniforms.n; i = i + uniforms.groups * 256) {
          let row = codeToRow[edkmCode(x[i])];
          if (row >= 0) {
            let gi = g[i];
            let base = row * ${c};
            ${accumulate}
          }
        }
        ${reduceAll}
      }`;
  }
}
