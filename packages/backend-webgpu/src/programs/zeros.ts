import { FlatProgram } from './base';

/** Fills the output with zeros (the accumulator of an atomic scatter). */
export class ZerosProgram extends FlatProgram {
  variableNames: string[] = [];
  shaderKey = 'edkm_zeros';
  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) { setOutputAtIndex(index, 0.0); }
      }`;
  }
}
