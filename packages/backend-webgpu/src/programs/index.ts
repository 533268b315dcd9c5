import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { webgpu_util } from '@tensorflow/tfjs-backend-webgpu';

/** A flat program: one invocation per output element, `index` is that element. */
export abstract class FlatProgram implements WebGPUProgram {
  outputShape: number[];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  size = true;
  abstract variableNames: string[];
  abstract shaderKey: string;
  abstract getUserCode(): string;

  outputComponent?: number;

  constructor(outputShape: number[]) {
    this.outputShape = outputShape;
    this.dispatchLayout = webgpu_util.flatDispatchLayout(outputShape);
    this.dispatch = webgpu_util.computeDispatch(
      this.dispatchLayout,
      outputShape,
      this.workgroupSize,
    );
  }

  /** n/4 invocations of 256, each reading and writing four of the n elements as a vec4. */
  protected fourPerInvocation(n: number): void {
    this.outputComponent = 4;
    this.workgroupSize = [256, 1, 1];
    this.dispatchLayout = webgpu_util.flatDispatchLayout([n / 4]);
    this.dispatch = webgpu_util.computeDispatch(this.dispatchLayout, [n / 4], this.workgroupSize);
  }
}

/** out[i, c] = table[indices[i], c], zero for out-of-range indices. */
export class GatherRowsProgram extends FlatProgram {
  variableNames = ['table', 'indices'];
  uniforms = 'numRows : i32, k : i32,';
  shaderKey = 'edkm_gather_rows';
  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let row = index / uniforms.k;
          let col = index - row * uniforms.k;
          let u = indices[row];
          var v = 0.0;
          if (u >= 0 && u < uniforms.numRows) {
            v = table[u * uniforms.k + col];
          }
          setOutputAtIndex(index, v);
        }
      }`;
  }
}

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

/**
 * result[indices[i], c] += values[i, c]: one invocation per input element, float add through a
 * compare-exchange loop on the bits (WebGPU has no float atomics).
 */
export class ScatterAddRowsProgram extends FlatProgram {
  variableNames = ['values', 'indices'];
  uniforms = 'numRows : i32, k : i32, n : i32,';
  atomic = true;
  shaderKey = 'edkm_scatter_add_rows';
  override size = false;
  constructor(n: number, k: number, numRows: number) {
    super([numRows, k]);
    // dispatch over the inputs, not the output
    this.dispatchLayout = webgpu_util.flatDispatchLayout([n, k]);
    this.dispatch = webgpu_util.computeDispatch(this.dispatchLayout, [n, k], this.workgroupSize);
  }
  getUserCode(): string {
    return `
      fn atomicAddFloat(at : i32, value : f32) {
        var old = atomicLoad(&result[at]);
        loop {
          let next = bitcast<i32>(bitcast<f32>(old) + value);
          let swapped = atomicCompareExchangeWeak(&result[at], old, next);
          if (swapped.exchanged) { break; }
          old = swapped.old_value;
        }
      }
      fn main(index : i32) {
        if (index < uniforms.n * uniforms.k) {
          let i = index / uniforms.k;
          let col = index - i * uniforms.k;
          let u = indices[i];
          if (u >= 0 && u < uniforms.numRows) {
            atomicAddFloat(u * uniforms.k + col, values[index]);
          }
        }
      }`;
  }
}

/** out[i] = x[i] · table[idx[i]].x + table[idx[i]].y (0 for out-of-range indices). */
export class GatherAffineProgram extends FlatProgram {
  variableNames = ['table', 'indices', 'x'];
  uniforms = 'numRows : i32,';
  shaderKey = 'edkm_gather_affine';
  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let u = indices[index];
          var v = 0.0;
          if (u >= 0 && u < uniforms.numRows) {
            v = x[index] * table[2 * u] + table[2 * u + 1];
          }
          setOutputAtIndex(index, v);
        }
      }`;
  }
}

/** WGSL: the 16-bit code of a float32 (round to nearest even; NaN quieted), as in @edkm/core's half.ts. */
export function codeFunction(dtype: 'bf16' | 'fp16'): string {
  if (dtype === 'bf16') {
    return `
      fn edkmCode(v : f32) -> i32 {
        let b = bitcast<u32>(v);
        if ((b & 0x7fffffffu) > 0x7f800000u) { return i32(((b >> 16u) | 0x40u) & 0xffffu); }
        return i32(((b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u) & 0xffffu);
      }`;
  }
  return `
      fn edkmCode(v : f32) -> i32 {
        let x = bitcast<u32>(v);
        let sign = (x >> 16u) & 0x8000u;
        let a = x & 0x7fffffffu;
        if (a >= 0x7f800000u) {
          return i32(sign | 0x7c00u | select(0u, 0x200u | ((a >> 13u) & 0x3ffu), a > 0x7f800000u));
        }
        if (a >= 0x477ff000u) { return i32(sign | 0x7c00u); }
        if (a < 0x38800000u) {
          if (a < 0x33000000u) { return i32(sign); }
          let shift = 126u - (a >> 23u);
          let m = (a & 0x7fffffu) | 0x800000u;
          let h = m >> shift;
          let rem = m & ((1u << shift) - 1u);
          let halfway = 1u << (shift - 1u);
          var r = h;
          if (rem > halfway || (rem == halfway && (h & 1u) == 1u)) { r = h + 1u; }
          return i32(sign | r);
        }
        let reb = a - 0x38000000u;
        return i32(sign | ((reb + 0x0fffu + ((reb >> 13u) & 1u)) >> 13u));
      }`;
}

/**
 * counts[copy, code(x_i)] += 1 over a grid-stride share of the elements, copy = workgroup mod
 * copies: a hot code's atomics spread over `copies` addresses instead of serialising on one
 * (HistogramMergeProgram adds the copies; integer sums, so the result is exact).
 */
export class CodeHistogramCopiesProgram implements WebGPUProgram {
  outputShape: number[];
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [256, 1, 1];
  variableNames = ['x'];
  uniforms = 'n : i32, groups : i32,';
  atomic = true;
  size = false;
  shaderKey: string;
  constructor(
    groups: number,
    private readonly copies: number,
    private readonly dtype: 'bf16' | 'fp16',
  ) {
    this.outputShape = [copies * 65536];
    this.dispatch = [groups, 1, 1];
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

/** out[code] = Σ_c parts[c, code] (int32). */
export class HistogramMergeProgram extends FlatProgram {
  variableNames = ['parts'];
  uniforms = 'copies : i32,';
  shaderKey = 'edkm_histogram_merge';
  constructor() {
    super([65536]);
  }
  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var s = 0;
          for (var c = 0; c < uniforms.copies; c = c + 1) { s = s + parts[c * 65536 + index]; }
          setOutputAtIndexI32(index, s);
        }
      }`;
  }
}

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

/**
 * The centroid iterations on the U-row table (TableIterate), in one workgroup of 256 threads:
 * per update, (1) each point's largest logit and softmax normaliser under C_{t−1}; (2) centroid j's
 * mass and weighted sum over a 256/K-th of the points per thread, the partial sums added in a fixed
 * order (deterministic); (3) each point's output A(C_{t−1}) · C_t and the largest move, which stops
 * the loop at epsilon. T, C_{T−1}; C_T and the outputs stay on the device. Logits below e^-40 of
 * their row's largest are skipped, as in the float64 reference.
 */
export class TableIterateProgram implements WebGPUProgram {
  outputShape: number[];
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number] = [1, 1, 1];
  workgroupSize: [number, number, number] = [256, 1, 1];
  variableNames = ['points', 'counts', 'c0'];
  uniforms = 'u : i32, tau : f32, epsilon : f32,';
  size = false;
  shaderKey: string;
  constructor(
    size: number,
    private readonly k: number,
    private readonly iterations: number,
  ) {
    this.outputShape = [size];
    this.shaderKey = `edkm_table_iterate_${k}_${iterations}`;
  }
  getUserCode(): string {
    const k = this.k;
    const slices = Math.max(1, Math.floor(256 / k));
    return `
      const KK = ${k};
      const II = ${this.iterations};
      const SLICES = ${slices};
      var<workgroup> massPart : array<f32, 256>;
      var<workgroup> numPart : array<f32, 256>;
      var<workgroup> moved : f32;
      // a logit minus its row's largest, (m² − a²)/τ for the distance a to a centroid and m to the
      // nearest one, in factored form: exactly 0 for the nearest, and no cancellation between
      // large numbers however small τ is (every pass recomputes logits, and a compiler may
      // contract −a²/τ − (−m²/τ) differently in each: at τ = 1e-12 that was off by e^±8)
      fn logit(m : f32, a : f32, invTau : f32) -> f32 { return (m - a) * (m + a) * invTau; }
      fn main(index : i32) {
        let tid = i32(localIndex);
        let U = uniforms.u;
        let invTau = 1.0 / uniforms.tau;
        let stepsAt = (II + 1) * KK;
        let lastAt = stepsAt + 1;
        let outAt = lastAt + 2 * KK;
        let scratch = outAt + U;
        for (var j = tid; j < KK; j = j + 256) { result[j] = c0[j]; }
        storageBarrier();
        var T = II;
        for (var t = 1; t <= II; t = t + 1) {
          let prev = (t - 1) * KK;
          for (var p = tid; p < U; p = p + 256) {
            let v = points[p];
            var m = 3.0e38;
            for (var j = 0; j < KK; j = j + 1) { m = min(m, abs(v - result[prev + j])); }
            var z = 0.0;
            for (var j = 0; j < KK; j = j + 1) {
              let l = logit(m, abs(v - result[prev + j]), invTau);
              if (l > -40.0) { z = z + exp(l); }
            }
            result[scratch + 2 * p] = m;
            result[scratch + 2 * p + 1] = z;
          }
          storageBarrier();
          let j = tid % KK;
          let slice = tid / KK;
          var mass = 0.0;
          var num = 0.0;
          if (slice < SLICES) {
            let c = result[prev + j];
            for (var p = slice; p < U; p = p + SLICES) {
              let v = points[p];
              let l = logit(result[scratch + 2 * p], abs(v - c), invTau);
              if (l > -40.0) {
                let a = counts[p] * exp(l) / result[scratch + 2 * p + 1];
                mass = mass + a;
                num = num + a * v;
              }
            }
          }
          massPart[tid] = mass;
          numPart[tid] = num;
          workgroupBarrier();
          if (tid < KK) {
            var m = 0.0;
            var n = 0.0;
            for (var s = 0; s < SLICES; s = s + 1) { m = m + massPart[s * KK + tid]; n = n + numPart[s * KK + tid]; }
            result[t * KK + tid] = n / max(m, 1e-30);
          }
          storageBarrier();
          // this update's output per point (overwritten by the next: at the end, A(C_{T-1}) C_T)
          for (var p = tid; p < U; p = p + 256) {
            let v = points[p];
            let m = result[scratch + 2 * p];
            var o = 0.0;
            for (var i = 0; i < KK; i = i + 1) {
              let l = logit(m, abs(v - result[prev + i]), invTau);
              if (l > -40.0) { o = o + exp(l) * result[t * KK + i]; }
            }
            result[outAt + p] = o / result[scratch + 2 * p + 1];
          }
          if (tid == 0) {
            var shift = 0.0;
            for (var i = 0; i < KK; i = i + 1) { shift = max(shift, abs(result[t * KK + i] - result[prev + i])); }
            moved = shift;
          }
          let shift = workgroupUniformLoad(&moved);
          storageBarrier();
          if (t < II && uniforms.epsilon > 0.0 && shift < uniforms.epsilon) {
            T = t;
            break;
          }
        }
        if (tid == 0) { result[stepsAt] = f32(T); }
        for (var j = tid; j < 2 * KK; j = j + 256) { result[lastAt + j] = result[(T - 1) * KK + j]; }
      }`;
  }
}

/**
 * eDKM's whole table backward (see @edkm/core table.ts) in one workgroup: phases over the U
 * values (one thread per value) and over the K centroids (one thread per centroid, looping over
 * the values), separated by barriers. Columns 2 and 3 of the output hold per-value scratch
 * (log-sum-exp, and the softmax-backward term r).
 */
export class TableBackwardProgram implements WebGPUProgram {
  outputShape: number[];
  dispatchLayout = { x: [0, 1] };
  dispatch: [number, number, number] = [1, 1, 1];
  workgroupSize: [number, number, number] = [256, 1, 1];
  variableNames: string[];
  uniforms = 'u : i32, steps : i32, tau : f32,';
  shaderKey: string;
  /** stepsOnDevice: T is read from the `steps` input (TableIterate's), not the uniform. */
  constructor(
    u: number,
    private readonly k: number,
    private readonly stepsOnDevice = false,
  ) {
    this.outputShape = [u, 4];
    this.variableNames = ['seed', 'points', 'counts', 'centroids'];
    if (stepsOnDevice) this.variableNames.push('steps');
    this.shaderKey = `edkm_table_backward_${k}_${stepsOnDevice}`;
  }
  getUserCode(): string {
    // sums over the U values: every thread accumulates K partial sums over a strided share of
    // the values, then the workgroup adds them up per centroid (a tree in shared memory)
    const reduce = (partial: string, onTotal: string) => `
          for (var j = 0; j < KK; j = j + 1) {
            red[tid] = ${partial}[j];
            workgroupBarrier();
            for (var s = 128; s > 0; s = s / 2) {
              if (tid < s) { red[tid] = red[tid] + red[tid + s]; }
              workgroupBarrier();
            }
            if (tid == 0) { ${onTotal} }
            workgroupBarrier();
          }`;
    return `
      const KK = ${this.k};
      var<workgroup> dC : array<f32, KK>;
      var<workgroup> dNum : array<f32, KK>;
      var<workgroup> red : array<f32, 256>;

      fn cen(t : i32, j : i32) -> f32 { return centroids[t * KK + j]; }
      fn logit(v : f32, t : i32, j : i32) -> f32 { let d = v - cen(t, j); return -d * d / uniforms.tau; }
      fn lse(v : f32, t : i32) -> f32 {
        var m = -3.0e38;
        for (var j = 0; j < KK; j = j + 1) { m = max(m, logit(v, t, j)); }
        var s = 0.0;
        for (var j = 0; j < KK; j = j + 1) { s = s + exp(logit(v, t, j) - m); }
        return m + log(s);
      }
      fn att(v : f32, t : i32, j : i32, l : f32) -> f32 { return exp(logit(v, t, j) - l); }

      var<workgroup> stepsShared : i32;
      fn main(index : i32) {
        let tid = i32(localIndex);
        ${this.stepsOnDevice ? 'if (tid == 0) { stepsShared = i32(steps[0]); }' : 'stepsShared = uniforms.steps;'}
        let T = workgroupUniformLoad(&stepsShared);
        let two = 2.0 / uniforms.tau;
        var part : array<f32, KK>;
        // own-row Jacobian with the last iteration's attention (from C_{T-1})
        for (var u = tid; u < uniforms.u; u = u + 256) {
          let v = points[u];
          let l = lse(v, T - 1);
          var o = 0.0;
          var ch = 0.0;
          for (var j = 0; j < KK; j = j + 1) {
            let a = att(v, T - 1, j, l);
            o = o + a * cen(T, j);
            ch = ch + a * cen(T - 1, j);
          }
          var jac = 0.0;
          for (var j = 0; j < KK; j = j + 1) {
            jac = jac + att(v, T - 1, j, l) * (cen(T, j) - o) * (cen(T - 1, j) - ch);
          }
          result[u * 4] = two * jac;
          result[u * 4 + 1] = 0.0;
        }
        for (var j = tid; j < KK; j = j + 256) { dC[j] = seed[j]; }
        storageBarrier();
        workgroupBarrier();
        for (var t = T; t >= 1; t = t - 1) {
          // centroid masses S_k under this iteration's attention
          for (var j = 0; j < KK; j = j + 1) { part[j] = 0.0; }
          for (var u = tid; u < uniforms.u; u = u + 256) {
            let v = points[u];
            let l = lse(v, t - 1);
            result[u * 4 + 2] = l;
            for (var j = 0; j < KK; j = j + 1) { part[j] = part[j] + counts[u] * att(v, t - 1, j, l); }
          }
          ${reduce('part', 'dNum[j] = dC[j] / max(red[0], 1e-30);')}
          // per value: its share of the centroid path, and the softmax-backward term r
          for (var u = tid; u < uniforms.u; u = u + 256) {
            let v = points[u];
            let l = result[u * 4 + 2];
            var r = 0.0;
            for (var j = 0; j < KK; j = j + 1) { r = r + att(v, t - 1, j, l) * dNum[j] * (v - cen(t, j)); }
            var own = 0.0;
            for (var j = 0; j < KK; j = j + 1) {
              let a = att(v, t - 1, j, l);
              let dz = a * (dNum[j] * (v - cen(t, j)) - r);
              own = own + a * dNum[j] - two * dz * (v - cen(t - 1, j));
            }
            result[u * 4 + 1] = result[u * 4 + 1] + own;
            result[u * 4 + 3] = r;
          }
          // dL/dC_{t-1}
          for (var j = 0; j < KK; j = j + 1) { part[j] = 0.0; }
          for (var u = tid; u < uniforms.u; u = u + 256) {
            let v = points[u];
            let l = result[u * 4 + 2];
            let r = result[u * 4 + 3];
            for (var j = 0; j < KK; j = j + 1) {
              let a = att(v, t - 1, j, l);
              part[j] = part[j] + counts[u] * a * (dNum[j] * (v - cen(t, j)) - r) * (v - cen(t - 1, j));
            }
          }
          ${reduce('part', 'dC[j] = two * red[0] + select(0.0, seed[KK + j], t == T);')}
        }
      }`;
  }
}

/**
 * First pass of CodeContract: each workgroup sums table[row(code(x_i)), :] · g_i over a strided
 * share of the elements (C accumulators per thread), then reduces its threads in shared memory
 * and writes one partial row. A second pass (ColumnSumProgram) adds the partial rows, so the
 * whole reduction is deterministic.
 */
export class CodeContractPartialProgram implements WebGPUProgram {
  outputShape: number[];
  dispatchLayout = { x: [0, 1] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [256, 1, 1];
  variableNames = ['table', 'codeToRow', 'x', 'g'];
  uniforms = 'n : i32, groups : i32,';
  shaderKey: string;
  constructor(
    groups: number,
    private readonly c: number,
    private readonly dtype: 'bf16' | 'fp16',
  ) {
    this.outputShape = [groups, c];
    this.dispatch = [groups, 1, 1];
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
    const reduceOne = (value: string, col: string) => `
        red[tid] = ${value};
        workgroupBarrier();
        for (var stride = 128; stride > 0; stride = stride / 2) {
          if (tid < stride) { red[tid] = red[tid] + red[tid + stride]; }
          workgroupBarrier();
        }
        if (tid == 0) { result[group * ${c} + ${col}] = red[0]; }
        workgroupBarrier();`;
    const reduceAll = unrolled
      ? cols.map((j) => reduceOne(`acc${j}`, `${j}`)).join('')
      : `for (var j = 0; j < ${c}; j = j + 1) {${reduceOne('acc[j]', 'j')}\n        }`;
    return `
      ${codeFunction(this.dtype)}
      var<workgroup> red : array<f32, 256>;
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

/**
 * First pass of SoftContract: like CodeContract, but each weight's attention row is recomputed
 * from its own rounded value (K exponentials) instead of read from a per-value table: no
 * gathers, so the pass runs at the speed of reading x and g.
 */
export class SoftContractPartialProgram implements WebGPUProgram {
  outputShape: number[];
  dispatchLayout = { x: [0, 1] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [256, 1, 1];
  variableNames = ['x', 'g', 'centroids'];
  uniforms = 'n : i32, groups : i32, tau : f32,';
  shaderKey: string;
  constructor(
    groups: number,
    private readonly k: number,
    private readonly dtype: 'bf16' | 'fp16',
  ) {
    this.outputShape = [groups, 2 * k];
    this.dispatch = [groups, 1, 1];
    this.shaderKey = `edkm_soft_contract_${dtype}_${k}`;
  }
  getUserCode(): string {
    const k = this.k;
    const value =
      this.dtype === 'bf16'
        ? 'bitcast<f32>(u32(edkmCode(x[i])) << 16u)'
        : 'unpack2x16float(u32(edkmCode(x[i]))).x';
    const reduceOne = (acc: string, col: number) => `
        red[tid] = ${acc};
        workgroupBarrier();
        for (var stride = 128; stride > 0; stride = stride / 2) {
          if (tid < stride) { red[tid] = red[tid] + red[tid + stride]; }
          workgroupBarrier();
        }
        if (tid == 0) { result[group * 2 * KK + ${col}] = red[0]; }
        workgroupBarrier();`;
    const reduce = `
        for (var j = 0; j < 2 * KK; j = j + 1) {
          red[tid] = ACC(j);
          workgroupBarrier();
          for (var stride = 128; stride > 0; stride = stride / 2) {
            if (tid < stride) { red[tid] = red[tid] + red[tid + stride]; }
            workgroupBarrier();
          }
          if (tid == 0) { result[group * 2 * KK + j] = red[0]; }
          workgroupBarrier();
        }`;
    // both forms: one main per workgroup over a strided share of the weights
    const header = `
      ${codeFunction(this.dtype)}
      const KK = ${k};
      var<workgroup> red : array<f32, 256>;
      fn main(index : i32) {
        let tid = i32(localIndex);
        let group = i32(workgroupId.x);
        let two = 2.0 / uniforms.tau;`;
    if (k <= 16) {
      // up to 16 centroids: every per-centroid quantity in a register of its own (a dynamically
      // indexed private array lives in slow local memory)
      const js = Array.from({ length: k }, (_, j) => j);
      const each = (f: (j: number) => string, sep = '\n          ') => js.map(f).join(sep);
      return `${header}
        let negInvTau = -1.0 / uniforms.tau;
        ${each((j) => `let p${j} = centroids[${j}]; let l${j} = centroids[${k + j}];`)}
        ${each((j) => `var a${j} = 0.0; var b${j} = 0.0;`)}
        for (var i = group * 256 + tid; i < uniforms.n; i = i + uniforms.groups * 256) {
          let v = ${value};
          let gi = g[i];
          ${each((j) => `let d${j} = v - p${j}; let z${j} = d${j} * d${j} * negInvTau;`)}
          let m = ${js.slice(1).reduce((acc, j) => `max(${acc}, z${j})`, 'z0')};
          ${each((j) => `let e${j} = exp(z${j} - m);`)}
          let sum = ${each((j) => `e${j}`, ' + ')};
          let o = (${each((j) => `e${j} * l${j}`, ' + ')}) / sum;
          let s = gi / sum;
          ${each((j) => `a${j} = a${j} + e${j} * s; b${j} = b${j} + two * e${j} * s * (l${j} - o) * d${j};`)}
        }
        ${[...js.map((j) => `a${j}`), ...js.map((j) => `b${j}`)].map((acc, col) => reduceOne(acc, col)).join('')}
      }`;
    }
    return `${header}
        var prev : array<f32, KK>;
        var last : array<f32, KK>;
        for (var j = 0; j < KK; j = j + 1) { prev[j] = centroids[j]; last[j] = centroids[KK + j]; }
        var accA : array<f32, KK>;
        var accB : array<f32, KK>;
        var z : array<f32, KK>;
        for (var j = 0; j < KK; j = j + 1) { accA[j] = 0.0; accB[j] = 0.0; }
        for (var i = group * 256 + tid; i < uniforms.n; i = i + uniforms.groups * 256) {
          let v = ${value};
          let gi = g[i];
          var m = -3.0e38;
          for (var j = 0; j < KK; j = j + 1) {
            let d = v - prev[j];
            z[j] = -d * d / uniforms.tau;
            m = max(m, z[j]);
          }
          var sum = 0.0;
          var o = 0.0;
          for (var j = 0; j < KK; j = j + 1) {
            z[j] = exp(z[j] - m);
            sum = sum + z[j];
            o = o + z[j] * last[j];
          }
          let inv = 1.0 / sum;
          o = o * inv;
          for (var j = 0; j < KK; j = j + 1) {
            let ag = z[j] * inv * gi;
            accA[j] = accA[j] + ag;
            accB[j] = accB[j] + two * ag * (last[j] - o) * (v - prev[j]);
          }
        }
        ${reduce.replace('ACC(j)', 'select(accB[max(j - KK, 0)], accA[min(j, KK - 1)], j < KK)')}
      }`;
  }
}

/** out[c] = Σ_r partials[r, c] (in row order: deterministic). */
export class ColumnSumProgram extends FlatProgram {
  variableNames = ['partials'];
  uniforms = 'rows : i32, cols : i32,';
  shaderKey = 'edkm_column_sum';
  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var s = 0.0;
          for (var r = 0; r < uniforms.rows; r = r + 1) { s = s + partials[r * uniforms.cols + index]; }
          setOutputAtIndex(index, s);
        }
      }`;
  }
}
