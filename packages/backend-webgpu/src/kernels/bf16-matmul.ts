import type { Bf16MatMulAttrs, LinearFusion, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { EdkmProgram } from '../programs';
import { linearGemm } from './linear-gemm';
import {
  LINEAR_WG,
  fusionBindings,
  fusionInputs,
  linearGrid,
  linearInput,
  linearShader,
  linearUniforms,
  mTile,
  perRow,
  serialGrid,
  serialLinear,
  serialLinearShader,
  serialMTile,
  withSiluMul,
} from './palette-matmul';

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
    private readonly fusion: LinearFusion = {},
    private readonly serial = false,
  ) {
    super([m, n], serial ? serialGrid(n, m, mt) : linearGrid(n, m, mt).dispatch);
    const g = linearGrid(n, m, mt);
    this.passes = g.passes;
    this.grid = g.grid;
    this.aligned = k % 8 === 0;
    const extra = fusionBindings(fusion, this.aligned ? 4 : 1);
    this.variableNames.push(...extra.names);
    this.uniforms += extra.uniforms;
    if (this.aligned) this.variableComponents = [4, 4, ...extra.components];
    this.shaderKey = `edkm_bf16_matmul_${mt}_${this.aligned}_${extra.key}_${serial ? 'serial' : 'reduce'}`;
  }
  getUserCode(): string {
    const { mt, serial, fusion } = this;
    const input = linearInput(fusion, this.aligned ? 4 : 1, !serial);
    // reduce: the workgroup's threads split K; serial: one invocation walks all of it
    const [from, step] = serial ? ['0', '1'] : ['tid', `${LINEAR_WG}`];
    const body = this.aligned
      ? `
          let chunks = uniforms.k / 8;
          for (var c = ${from}; c < chunks; c = c + ${step}) {
            let q = bitcast<vec4<u32>>(w[s * chunks + c]);
            let lo = vec4<f32>(bitcast<f32>(q.x << 16u), bitcast<f32>(q.x & 0xffff0000u),
                               bitcast<f32>(q.y << 16u), bitcast<f32>(q.y & 0xffff0000u));
            let hi = vec4<f32>(bitcast<f32>(q.z << 16u), bitcast<f32>(q.z & 0xffff0000u),
                               bitcast<f32>(q.w << 16u), bitcast<f32>(q.w & 0xffff0000u));
            ${perRow(mt, (r) => {
              const a = input.read(r, '2 * c', `xa${r}`);
              const b = input.read(r, '2 * c + 1', `xb${r}`);
              return `${a.decl} ${b.decl} acc${r} = acc${r} + dot(${a.value}, lo) + dot(${b.value}, hi);`;
            })}
          }`
      : `
          for (var j = ${from}; j < uniforms.k; j = j + ${step}) {
            let e = s * uniforms.k + j;
            let word = bitcast<u32>(w[e / 2]);
            let v = bitcast<f32>(select(word << 16u, word & 0xffff0000u, (e & 1) == 1));
            ${perRow(mt, (r) => {
              const x = input.read(r, 'j', `x${r}`);
              return `${x.decl} acc${r} = acc${r} + ${x.value} * v;`;
            })}
          }`;
    const xDiv = this.aligned ? 4 : 1;
    if (serial) return serialLinearShader({ mt, xDiv, body, col: 's', value: 'ACC', fusion });
    return linearShader({ mt, xDiv, body, col: 's', value: () => 'RED', fusion });
  }
}

export const bf16MatMul: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { x, w, g, residual } = inputs as Record<string, tf.TensorInfo>;
  const fusion = attrs as unknown as Bf16MatMulAttrs;
  if (fusion.prologue === 'swiglu') return withSiluMul(bf16MatMul, { inputs, backend, attrs });
  const m = x.shape[0];
  const k = x.shape[1];
  // many rows of x (prefill): the tiled f32 GEMM, decoding the bf16 tile as it stages it
  const y = linearGemm(gpu, x, [w], fusion.n, { format: 'bf16' }, fusion, g, residual);
  if (y) return y;
  const serial = serialLinear();
  const mt = serial ? serialMTile(m) : mTile(m);
  const program = new Bf16MatMulProgram(m, fusion.n, k, mt, fusion, serial);
  return gpu.runWebGPUProgram(
    program,
    [x, w, ...fusionInputs(fusion, g, residual)],
    'float32',
    linearUniforms(m, fusion.n, k, program, fusion),
  );
};
