import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError, ShapeError } from './errors';

/**
 * The attention kernels of KV-cached decoding with shapes fixed for a whole generation: the cache
 * [2, B, KV, L, D] (keys, then values) is allocated once for L positions and written in place;
 * the current position is an attribute (a uniform on WebGPU), never a shape, so every step runs
 * the same kernels on the same buffers.
 *
 * `qkv` [B·T, (H + 2·KV)·D] holds each new position's query, key and value heads side by side (one
 * stacked projection); row b·T + t is batch row b's t-th new position, at cache slot pos + t.
 * Batch row b is left-padded by starts[b] slots: its keys before that slot are never attended to
 * and its RoPE positions count from it. `rope` [L, D]: cos(p·f_i) in columns i < D/2 and
 * sin(p·f_i) in columns D/2 + i (Hugging Face's rotate-half convention).
 *
 * Optionally the position comes from the device instead: `position`, an int32 [1] tensor, holds
 * the cache slot of the first new position and the kernels read it there (attrs.pos is then only
 * the caller's claim, checked against the cache's length). With it a step's kernels, uniforms and
 * grids are the same at every position, so a recorded step can be replayed (see captureGraph).
 */
export const DecodeKernelNames = {
  /** {cache, qkv, rope, starts: [B] int32, position?: [1] int32}, attrs → cache (written in place and returned). */
  KvWrite: 'EdkmKvWrite',
  /** {qkv, cache, rope, starts, position?}, attrs → [B·T, H·D]: causal attention over slots [starts[b], pos + t]. */
  CachedAttention: 'EdkmCachedAttention',
  /** {cache, qkv, rope, starts, position?}, attrs → [B·T, H·D]: KvWrite, then CachedAttention (one kernel where it can). */
  KvWriteAttention: 'EdkmKvWriteAttention',
  /** {x: [M, H], weight: [H]}, attrs {eps} → [M, H]: x / √(mean(x²) + eps) · weight (one pass per row). */
  RmsNorm: 'EdkmRmsNorm',
  /** {gu: [M, 2I]} → [M, I]: silu(gu[:, :I]) · gu[:, I:] (the MLP's gate and up from one stacked matmul). */
  SiluMul: 'EdkmSiluMul',
} as const;

/** RMSNorm of each row in one kernel (inference; not differentiable). */
export function rmsNormRows(x: tf.Tensor2D, weight: tf.Tensor1D, eps: number): tf.Tensor2D {
  if (x.rank !== 2 || weight.rank !== 1 || weight.shape[0] !== x.shape[1])
    throw new ShapeError(
      `rmsNormRows: x [M, H] and weight [H], got [${x.shape}] and [${weight.shape}]`,
    );
  return tf.engine().runKernel(DecodeKernelNames.RmsNorm, { x, weight }, {
    eps,
  } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

/** silu(gate) · up of a stacked [M, 2I] gate/up product → [M, I]. */
export function siluMul(gu: tf.Tensor2D): tf.Tensor2D {
  if (gu.rank !== 2 || gu.shape[1] % 2 !== 0)
    throw new ShapeError(`siluMul: gu must be [M, 2I], got [${gu.shape}]`);
  return tf.engine().runKernel(DecodeKernelNames.SiluMul, { gu }) as tf.Tensor2D;
}

export interface DecodeAttrs {
  heads: number;
  kvHeads: number;
  /** Cache slot of the first new position. */
  pos: number;
}

/** The [L, D] RoPE table (cos | sin) for inverse frequencies f (D/2 of them). */
export function ropeTable(length: number, invFreq: Float32Array): Float32Array {
  const half = invFreq.length;
  const d = 2 * half;
  const out = new Float32Array(length * d);
  for (let p = 0; p < length; p++)
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(p * invFreq[i]);
      out[p * d + i] = Math.cos(angle);
      out[p * d + half + i] = Math.sin(angle);
    }
  return out;
}

function check(
  op: string,
  cache: tf.Tensor,
  qkv: tf.Tensor,
  rope: tf.Tensor,
  starts: tf.Tensor,
  a: DecodeAttrs,
  position?: tf.Tensor,
): void {
  if (cache.rank !== 5 || cache.shape[0] !== 2)
    throw new ShapeError(`${op}: cache must be [2, B, KV, L, D], got [${cache.shape}]`);
  const [, b, kv, l, d] = cache.shape;
  if (kv !== a.kvHeads || a.heads % a.kvHeads !== 0)
    throw new ShapeError(`${op}: ${a.heads} heads over ${a.kvHeads} KV heads, cache has ${kv}`);
  if (d % 2 !== 0) throw new ShapeError(`${op}: head dim ${d} must be even`);
  const c = (a.heads + 2 * a.kvHeads) * d;
  if (qkv.rank !== 2 || qkv.shape[1] !== c || qkv.shape[0] % b !== 0)
    throw new ShapeError(`${op}: qkv must be [${b}·T, ${c}], got [${qkv.shape}]`);
  const t = qkv.shape[0] / b;
  if (!Number.isInteger(a.pos) || a.pos < 0 || a.pos + t > l)
    throw new InvalidArgumentError(
      `${op}: positions ${a.pos}..${a.pos + t - 1} outside the cache's ${l}`,
    );
  if (rope.rank !== 2 || rope.shape[0] < l || rope.shape[1] !== d)
    throw new ShapeError(`${op}: rope must be [≥ ${l}, ${d}], got [${rope.shape}]`);
  if (starts.dtype !== 'int32' || starts.rank !== 1 || starts.shape[0] !== b)
    throw new ShapeError(
      `${op}: starts must be int32 [${b}], got ${starts.dtype} [${starts.shape}]`,
    );
  if (position && (position.dtype !== 'int32' || position.rank !== 1 || position.shape[0] !== 1))
    throw new ShapeError(
      `${op}: position must be int32 [1], got ${position.dtype} [${position.shape}]`,
    );
}

/** The inputs of a decode kernel, with the device position when there is one. */
function decodeInputs<T extends Record<string, tf.Tensor>>(
  inputs: T,
  position?: tf.Tensor1D,
): tf.NamedTensorMap {
  return position ? { ...inputs, position } : inputs;
}

/** The position a decode kernel uses: the device's (read on the host: CPU plugins) or attrs.pos. */
export function decodePosition(a: DecodeAttrs, position?: ArrayLike<number>): DecodeAttrs {
  return position ? { ...a, pos: position[0] } : a;
}

/**
 * Writes the new positions' keys (RoPE applied) and values into the cache in place. The returned
 * tensor shares the cache's data (dispose it, or keep it instead of the old handle).
 */
export function kvWrite(
  cache: tf.Tensor,
  qkv: tf.Tensor2D,
  rope: tf.Tensor2D,
  starts: tf.Tensor1D,
  attrs: DecodeAttrs,
  position?: tf.Tensor1D,
): tf.Tensor {
  return runDecode('kvWrite', DecodeKernelNames.KvWrite, cache, qkv, rope, starts, attrs, position);
}

/** Causal grouped-query attention of the new positions' queries over the cache → [B·T, H·D]. */
export function cachedAttention(
  qkv: tf.Tensor2D,
  cache: tf.Tensor,
  rope: tf.Tensor2D,
  starts: tf.Tensor1D,
  attrs: DecodeAttrs,
  position?: tf.Tensor1D,
): tf.Tensor2D {
  const kernel = DecodeKernelNames.CachedAttention;
  return runDecode('cachedAttention', kernel, cache, qkv, rope, starts, attrs, position);
}

/**
 * kvWrite, then cachedAttention: this step's keys (RoPE applied) and values into the cache, then
 * the causal attention of its queries over it → [B·T, H·D]; the cache is written in place. A
 * backend may do both in one kernel (the webgpu plugin does when decoding one position a row:
 * one dispatch a layer fewer).
 */
export function kvWriteAttention(
  cache: tf.Tensor,
  qkv: tf.Tensor2D,
  rope: tf.Tensor2D,
  starts: tf.Tensor1D,
  attrs: DecodeAttrs,
  position?: tf.Tensor1D,
): tf.Tensor2D {
  const kernel = DecodeKernelNames.KvWriteAttention;
  return runDecode('kvWriteAttention', kernel, cache, qkv, rope, starts, attrs, position);
}

/** One of the decode kernels on checked inputs (`op` names the caller in errors). */
function runDecode<T extends tf.Tensor>(
  op: string,
  kernel: string,
  cache: tf.Tensor,
  qkv: tf.Tensor2D,
  rope: tf.Tensor2D,
  starts: tf.Tensor1D,
  attrs: DecodeAttrs,
  position?: tf.Tensor1D,
): T {
  check(op, cache, qkv, rope, starts, attrs, position);
  return tf.engine().runKernel(kernel, decodeInputs({ cache, qkv, rope, starts }, position), {
    ...attrs,
  } as unknown as tf.NamedAttrMap) as T;
}

/**
 * DecodeKernelNames.KvWriteAttention from a plugin's KvWrite and CachedAttention kernels, one
 * after the other (for plugins without a fused kernel, and for a fused kernel's other cases).
 */
export function kvWriteThenAttention(
  kvWrite: tf.KernelFunc,
  attention: tf.KernelFunc,
): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    // (the in-place KvWrite returns the cache with one more reference: drop it)
    const cache = kvWrite({ inputs, backend, attrs }) as tf.TensorInfo;
    (backend as tf.KernelBackend).disposeData(cache.dataId);
    return attention({ inputs, backend, attrs });
  };
}

export interface DecodeShape {
  b: number;
  kv: number;
  l: number;
  d: number;
}

function ropeAt(
  row: Float32Array,
  at: number,
  i: number,
  d: number,
  rope: Float32Array,
  p: number,
): number {
  const half = d / 2;
  const j = i % half;
  const cos = rope[p * d + j];
  const sin = rope[p * d + half + j];
  const x = row[at + i];
  return i < half
    ? Math.fround(Math.fround(x * cos) - Math.fround(row[at + i + half] * sin))
    : Math.fround(Math.fround(x * cos) + Math.fround(row[at + i - half] * sin));
}

/** Plain references of the decode kernels (the cpu plugin runs them as they are). */
export const decodeReference = {
  rmsNorm(x: Float32Array, h: number, weight: Float32Array, eps: number): Float32Array {
    const out = new Float32Array(x.length);
    for (let r = 0; r < x.length / h; r++) {
      let ss = 0;
      for (let i = 0; i < h; i++) ss += x[r * h + i] * x[r * h + i];
      const inv = 1 / Math.sqrt(ss / h + eps);
      for (let i = 0; i < h; i++) out[r * h + i] = x[r * h + i] * inv * weight[i];
    }
    return out;
  },
  siluMul(gu: Float32Array, m: number): Float32Array {
    const i2 = gu.length / m;
    const n = i2 / 2;
    const out = new Float32Array(m * n);
    for (let r = 0; r < m; r++)
      for (let i = 0; i < n; i++) {
        const g = gu[r * i2 + i];
        out[r * n + i] = (g / (1 + Math.exp(-g))) * gu[r * i2 + n + i];
      }
    return out;
  },
  kvWrite(
    cache: Float32Array,
    s: DecodeShape,
    qkv: Float32Array,
    rope: Float32Array,
    starts: Int32Array,
    a: DecodeAttrs,
  ): void {
    const { b: B, kv: KV, l: L, d: D } = s;
    const H = a.heads;
    const C = (H + 2 * KV) * D;
    const T = qkv.length / C / B;
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++) {
        const row = (b * T + t) * C;
        const p = Math.max(0, a.pos + t - starts[b]);
        const slot = a.pos + t;
        for (let h = 0; h < KV; h++) {
          const kAt = ((b * KV + h) * L + slot) * D;
          const vAt = (((B + b) * KV + h) * L + slot) * D;
          for (let i = 0; i < D; i++) {
            cache[kAt + i] = ropeAt(qkv, row + (H + h) * D, i, D, rope, p);
            cache[vAt + i] = qkv[row + (H + KV + h) * D + i];
          }
        }
      }
  },
  cachedAttention(
    qkv: Float32Array,
    cache: Float32Array,
    s: DecodeShape,
    rope: Float32Array,
    starts: Int32Array,
    a: DecodeAttrs,
  ): Float32Array {
    const { b: B, kv: KV, l: L, d: D } = s;
    const H = a.heads;
    const C = (H + 2 * KV) * D;
    const T = qkv.length / C / B;
    const rep = H / KV;
    const scale = 1 / Math.sqrt(D);
    const out = new Float32Array(B * T * H * D);
    const q = new Float32Array(D);
    const o = new Float64Array(D);
    let scores = new Float64Array(0);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++) {
        const row = (b * T + t) * C;
        const p = Math.max(0, a.pos + t - starts[b]);
        const len = a.pos + t + 1;
        const start = starts[b];
        if (scores.length < len) scores = new Float64Array(L);
        for (let h = 0; h < H; h++) {
          const kvh = Math.floor(h / rep);
          for (let i = 0; i < D; i++) q[i] = ropeAt(qkv, row + h * D, i, D, rope, p) * scale;
          const kBase = (b * KV + kvh) * L;
          const vBase = ((B + b) * KV + kvh) * L;
          let max = Number.NEGATIVE_INFINITY;
          for (let j = start; j < len; j++) {
            let acc = 0;
            const at = (kBase + j) * D;
            for (let i = 0; i < D; i++) acc += q[i] * cache[at + i];
            scores[j] = acc;
            if (acc > max) max = acc;
          }
          o.fill(0);
          let sum = 0;
          for (let j = start; j < len; j++) {
            const w = Math.exp(scores[j] - max);
            sum += w;
            const at = (vBase + j) * D;
            for (let i = 0; i < D; i++) o[i] += w * cache[at + i];
          }
          const to = (b * T + t) * H * D + h * D;
          for (let i = 0; i < D; i++) out[to + i] = sum > 0 ? o[i] / sum : 0;
        }
      }
    return out;
  },
};
