import type { tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { EdkmProgram } from '../programs';
import { LINEAR_WG, linearGrid, linearShader, mTile, perRow } from './palette-matmul';

/**
 * y = x · Wᵀ with W's bf16 bits two to a 32-bit word (LinearKernelNames.Bf16MatMul; WebGPU
 * without shader-f16). One workgroup per weight row and tile of x rows; with K a multiple of 8 each
 * thread reads 8 weights as one vec4 of words, else one weight at a time.
 */
export class Bf16MatMulProgram extends EdkmProgram {
  override workgroupSize: [number, number, number] = [LINEAR_WG, 1, 1];
  variableNames = ['x', 'w'];
  variableComponents?: number[];
  uniforms = 'm : i32, n : i32, k : i32, grid : i32, passes : i32,';
  shaderKey: string;
  readonly passes: number;
  readonly grid: number;
  private readonly aligned: boolean;
  constructor(
    m: number,
    n: number,
    k: number,
    private readonly mt: number,
  ) {
    super([m, n], linearGrid(n, m, mt).dispatch);
    const g = linearGrid(n, m, mt);
    this.passes = g.passes;
    this.grid = g.grid;
    this.aligned = k % 8 === 0;
    if (this.aligned) this.variableComponents = [4, 4];
    this.shaderKey = `edkm_bf16_matmul_${mt}_${this.aligned}`;
  }
  getUserCode(): string {
    const mt = this.mt;
    const body = this.aligned
      ? `
          let chunks = uniforms.k / 8;
          for (var c = tid; c < chunks; c = c + ${LINEAR_WG}) {
            let q = bitcast<vec4<u32>>(w[s * chunks + c]);
            let lo = vec4<f32>(bitcast<f32>(q.x << 16u), bitcast<f32>(q.x & 0xffff0000u),
                               bitcast<f32>(q.y << 16u), bitcast<f32>(q.y & 0xffff0000u));
            let hi = vec4<f32>(bitcast<f32>(q.z << 16u), bitcast<f32>(q.z & 0xffff0000u),
                               bitcast<f32>(q.w << 16u), bitcast<f32>(q.w & 0xffff0000u));
            ${perRow(mt, (r) => `acc${r} = acc${r} + dot(x[xRow${r} + 2 * c], lo) + dot(x[xRow${r} + 2 * c + 1], hi);`)}
          }`
      : `
          for (var j = tid; j < uniforms.k; j = j + ${LINEAR_WG}) {
            let e = s * uniforms.k + j;
            let word = bitcast<u32>(w[e / 2]);
            let v = bitcast<f32>(select(word << 16u, word & 0xffff0000u, (e & 1) == 1));
            ${perRow(mt, (r) => `acc${r} = acc${r} + x[xRow${r} + j] * v;`)}
          }`;
    return linearShader({ mt, xDiv: this.aligned ? 4 : 1, body, col: 's', value: () => 'RED' });
  }
}

export const bf16MatMul: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { x, w } = inputs as Record<string, tf.TensorInfo>;
  const { n } = attrs as unknown as { n: number };
  const [m, k] = x.shape;
  const program = new Bf16MatMulProgram(m, n, k, mTile(m));
  return gpu.runWebGPUProgram(program, [x, w], 'float32', [
    { type: 'int32', data: [m] },
    { type: 'int32', data: [n] },
    { type: 'int32', data: [k] },
    { type: 'int32', data: [program.grid] },
    { type: 'int32', data: [program.passes] },
  ]);
};
