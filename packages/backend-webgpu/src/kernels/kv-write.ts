import type { DecodeAttrs, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { webgpu_util } from '@tensorflow/tfjs-backend-webgpu';
import { EdkmProgram } from '../programs';
import { runProgramInto } from '../raw';

/**
 * WGSL: element i of a head at `at` of a qkv row, rotated to position p (rotate-half RoPE), reading
 * `qkv` and `rope`; `d` is the head size's expression and `int` the index type (tfjs programs: the
 * `uniforms.d` uniform and i32; raw kernels may pass a constant and u32).
 */
export function ropeFunction(d = 'uniforms.d', int: 'i32' | 'u32' = 'i32'): string {
  const two = int === 'u32' ? '2u' : '2';
  return `
      fn edkmRope(at : ${int}, i : ${int}, p : ${int}) -> f32 {
        let half = ${d} / ${two};
        let j = i % half;
        let c = rope[p * ${d} + j];
        let sn = rope[p * ${d} + half + j];
        if (i < half) { return qkv[at + i] * c - qkv[at + i + half] * sn; }
        return qkv[at + i] * c + qkv[at + i - half] * sn;
      }`;
}

/** WGSL: the first new position's slot, from the `position` input or the `pos` uniform. */
export function positionOf(device: boolean): string {
  return device ? 'position[0]' : 'uniforms.pos';
}

/**
 * DecodeKernelNames.KvWrite: one invocation per new key/value element; the output is the cache
 * itself (bound read-write), so nothing is allocated and no shape changes from step to step.
 */
export class KvWriteProgram extends EdkmProgram {
  override workgroupSize: [number, number, number] = [64, 1, 1];
  variableNames = ['qkv', 'rope', 'starts'];
  uniforms = 'b : i32, t : i32, h : i32, kv : i32, l : i32, d : i32, pos : i32, count : i32,';
  shaderKey: string;
  constructor(
    cacheShape: number[],
    count: number,
    private readonly devicePosition = false,
  ) {
    const layout = webgpu_util.flatDispatchLayout([count]);
    super(cacheShape, webgpu_util.computeDispatch(layout, [count], [64, 1, 1]), layout);
    if (devicePosition) this.variableNames.push('position');
    this.shaderKey = `edkm_kv_write_${devicePosition}`;
  }
  getUserCode(): string {
    return `
      ${ropeFunction()}
      fn main(index : i32) {
        if (index >= uniforms.count) { return; }
        let pos = ${positionOf(this.devicePosition)};
        let i = index % uniforms.d;
        let rest = index / uniforms.d;
        let hk = rest % uniforms.kv;
        let bt = rest / uniforms.kv;
        let b = bt / uniforms.t;
        let t = bt - b * uniforms.t;
        let row = bt * (uniforms.h + 2 * uniforms.kv) * uniforms.d;
        let p = max(0, pos + t - starts[b]);
        let slot = pos + t;
        let kAt = ((b * uniforms.kv + hk) * uniforms.l + slot) * uniforms.d + i;
        let vAt = (((uniforms.b + b) * uniforms.kv + hk) * uniforms.l + slot) * uniforms.d + i;
        result[kAt] = edkmRope(row + (uniforms.h + hk) * uniforms.d, i, p);
        result[vAt] = qkv[row + (uniforms.h + uniforms.kv + hk) * uniforms.d + i];
      }`;
  }
}

export const kvWrite: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as WebGPUBackend;
  const { cache, qkv, rope, starts, position } = inputs as Record<string, tf.TensorInfo>;
  const a = attrs as unknown as DecodeAttrs;
  const [, b, kv, l, d] = cache.shape;
  const t = qkv.shape[0] / b;
  const count = b * t * kv * d;
  // with the position on the device the uniforms are the same at every step (pos unused: 0)
  const pos = position ? 0 : a.pos;
  return runProgramInto(
    gpu,
    new KvWriteProgram(cache.shape, count, !!position),
    position ? [qkv, rope, starts, position] : [qkv, rope, starts],
    [b, t, a.heads, kv, l, d, pos, count].map((v) => ({ type: 'int32', data: [v] })),
    cache,
  );
};
