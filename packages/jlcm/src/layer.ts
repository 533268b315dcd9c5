import type { PaletteTensor } from '@edkm/codec';
import {
  InvalidArgumentError,
  NonFiniteError,
  ShapeError,
  StateError,
  f32ToF16Bits,
  roundToHalf,
  tf,
} from '@edkm/core';
import { type JlcmConfig, resolveJlcmConfig } from './config';
import { hasNonFinite, mapWeightsOnDevice } from './device-mapping';
import { type RowGroups, groupRows } from './grouping';
import { type CodebookLayout, fitCodebooks, mapWeights } from './mapping';

/** tfjs's customGrad callback type (its variadic signature does not fit named parameters). */
type CustomGradFunc = Parameters<typeof tf.customGrad>[0];

/** One codebook after the last prepare(). */
export interface JlcmGroupInfo {
  /** Original rows (neurons) that share it, ascending. */
  rows: Int32Array;
  /** Temperature of its soft mapping. */
  tau: number;
  /** Its K × d entries as used (fp16-rounded). */
  codebook: Float32Array;
}

export interface JlcmDescription {
  /** Original row of each stored row. */
  permutation: Int32Array;
  groups: JlcmGroupInfo[];
  /** Per original row, the scale as used (fp16-rounded), or null without per-channel scales. */
  scales: Float32Array | null;
  /** Fraction of the mapping that changed at the last prepare (0 at the first). */
  changedAssignments: number;
}

/**
 * What the next prepare() depends on besides the weight and the variables (JSON-serialisable):
 * the grouping and the temperatures, null before the first prepare(). The codebooks and scales
 * are variables: checkpoint them with the weights.
 */
export interface JlcmState {
  groups: { permutation: number[]; groupRows: number[] } | null;
  tau: number[] | null;
}

/** What prepare() leaves for apply(): the step's hard mapping and its constants. */
interface StepState {
  /** Codebook row (g·K + j) of every vector [rows·cols/d], original order. */
  index: tf.Tensor1D;
  /** The soft mapping's Jacobian: [rows, cols] for d = 1, [rows·cols/d, d, d] otherwise. */
  jacobian: tf.Tensor;
  /** fp16(c) − c and fp16(s) − s: the forward uses the rounded values, gradients pass straight through. */
  codebookRounding: tf.Tensor2D;
  scaleRounding: tf.Tensor2D | null;
  /** Data ids of the weight, codebooks and scales it was prepared for. */
  preparedFor: object[];
}

/**
 * Jointly learnable codebooks and mappings for one 2-D weight [rows, cols] (rows are output
 * channels, i.e. neurons). Rows are grouped into `codebooks` groups of similarly distributed
 * neurons (a stored permutation), each group shares a trainable codebook of K = 2^bits entries,
 * and each row has a trainable scale. The forward is the hard-assigned weight s_r · c_g[idx];
 * codebooks and scales get its ordinary gradients; the weight w (the latent mapping) gets the
 * gradient through the soft mapping A = softmax(−‖w/s − c‖²/τ) (straight-through), and its hard
 * mapping is recomputed from it at every prepare().
 *
 * Loop: `await prepare(w)` after every optimizer step (of w and of `variables()`), then `apply(w)`
 * inside the tape.
 */
export class JlcmTensor {
  readonly config: JlcmConfig;
  readonly shape: [number, number];
  /**
   * Trainable codebooks [codebooks, K, d] (set by the first prepare), in weight units: each
   * group's scales start with mean 1.
   */
  readonly codebooks: tf.Variable;
  /** Trainable per-row scales [rows, 1], original row order (null without per-channel scales). */
  readonly scales: tf.Variable | null;
  private groups: RowGroups | undefined;
  private tau: number[] | undefined;
  private state: StepState | undefined;
  /** The mapping of the last prepare() and the count of its changes (tensors on the backend). */
  private lastIndex: tf.Tensor1D | undefined;
  private changedCount: tf.Scalar | undefined;

  constructor(shape: [number, number], config: Partial<JlcmConfig> = {}) {
    this.config = resolveJlcmConfig(config);
    const [rows, cols] = shape;
    if (!(Number.isInteger(rows) && Number.isInteger(cols) && rows > 0 && cols > 0))
      throw new ShapeError(`JLCM needs a non-empty 2-D weight, got [${shape}]`);
    const { clusterDim: d, codebooks } = this.config;
    if (cols % d !== 0)
      throw new ShapeError(`clusterDim ${d} does not divide the row length ${cols}`);
    if (codebooks > rows)
      throw new ShapeError(`${codebooks} codebooks need at least as many rows, got ${rows}`);
    if (Math.floor(rows / codebooks) < this.minRows(cols))
      throw new ShapeError(
        `${codebooks} codebooks of K = ${this.k} entries need at least ${this.minRows(cols)} rows of ${cols / d} vectors each; the weight has ${rows} rows`,
      );
    this.shape = [rows, cols];
    this.codebooks = tf.tidy(() => tf.variable(tf.zeros([codebooks, this.k, d]), true));
    this.scales = this.config.perChannelScale
      ? tf.tidy(() => tf.variable(tf.ones([rows, 1]), true))
      : null;
  }

  get k(): number {
    return 2 ** this.config.bits;
  }

  /** Rows a group needs to hold at least K vectors. */
  private minRows(cols: number): number {
    return Math.ceil((this.k * this.config.clusterDim) / cols);
  }

  /** The grouping and temperatures, for a checkpoint (see JlcmState). */
  getState(): JlcmState {
    return {
      groups: this.groups
        ? {
            permutation: Array.from(this.groups.permutation),
            groupRows: [...this.groups.groupRows],
          }
        : null,
      tau: this.tau ? [...this.tau] : null,
    };
  }

  /** Restores getState()'s output on a JlcmTensor of the same shape and config. */
  setState(state: JlcmState): void {
    const [rows, cols] = this.shape;
    const g = this.config.codebooks;
    const groups = state?.groups;
    const seen = new Uint8Array(rows);
    const ok =
      (groups === null ||
        (Array.isArray(groups?.permutation) &&
          groups.permutation.length === rows &&
          groups.permutation.every(
            (r) => Number.isInteger(r) && r >= 0 && r < rows && !seen[r]++,
          ) &&
          Array.isArray(groups.groupRows) &&
          groups.groupRows.length === g &&
          groups.groupRows.every((n) => Number.isInteger(n) && n >= this.minRows(cols)) &&
          groups.groupRows.reduce((a, b) => a + b, 0) === rows)) &&
      (state.tau === null ||
        (Array.isArray(state.tau) &&
          state.tau.length === g &&
          state.tau.every((t) => t > 0 && Number.isFinite(t))));
    if (!ok)
      throw new InvalidArgumentError(
        `JLCM state does not fit a [${this.shape}] weight with ${g} codebooks`,
      );
    if (groups) {
      const groupOf = new Int32Array(rows);
      let stored = 0;
      groups.groupRows.forEach((n, group) => {
        for (const end = stored + n; stored < end; stored++)
          groupOf[groups.permutation[stored]] = group;
      });
      this.groups = {
        permutation: Int32Array.from(groups.permutation),
        groupRows: [...groups.groupRows],
        groupOf,
      };
    } else this.groups = undefined;
    this.tau = state.tau ? [...state.tau] : undefined;
    this.disposeMapping();
    this.disposeState();
  }

  /** The trainable codebooks and scales: the optimizer must update them with the weights. */
  variables(): tf.Variable[] {
    return this.scales ? [this.codebooks, this.scales] : [this.codebooks];
  }

  private get layout(): CodebookLayout {
    const [rows, cols] = this.shape;
    return { rows, cols, d: this.config.clusterDim, k: this.k, groupOf: this.groups!.groupOf };
  }

  /**
   * The first call reads the weight, groups the rows and fits codebooks and scales to it
   * (post-training initialisation), and maps it on the host in float64. Every later call maps the
   * weight where it lives (core's NearestEntry kernel: the hard mapping and the soft mapping's
   * Jacobian in one pass); only a finiteness flag of the weight, the codebooks and the scales
   * come back (asynchronously), never the weight.
   */
  async prepare(w: tf.Tensor): Promise<void> {
    this.checkShape(w);
    const [rows, cols] = this.shape;
    const d = this.config.clusterDim;
    let index: tf.Tensor1D;
    let jacobian: tf.Tensor;
    let parameters: Awaited<ReturnType<JlcmTensor['roundedParameters']>>;
    if (!this.groups || !this.tau) {
      // first prepare (or after setState without temperatures): on the host, in float64
      const data = (await w.data()) as Float32Array;
      this.checkFinite(data);
      if (!this.groups) {
        const { codebooks, grouping, perChannelScale, initIters, init, seed } = this.config;
        this.groups = groupRows(data, rows, cols, codebooks, grouping, {
          normalise: perChannelScale,
          minRows: this.minRows(cols),
          seed,
        });
        const fit = fitCodebooks(data, this.layout, codebooks, {
          perChannelScale,
          iterations: initIters,
          init,
          seed,
        });
        tf.tidy(() => {
          this.codebooks.assign(tf.tensor(fit.codebooks, this.codebooks.shape));
          if (this.scales && fit.scales) this.scales.assign(tf.tensor2d(fit.scales, [rows, 1]));
        });
      }
      parameters = await this.roundedParameters();
      const { codebooks, scales } = parameters;
      if (!this.tau) {
        const { tau, tauScale } = this.config;
        const m = mapWeights(data, this.layout, codebooks, scales, null);
        this.tau = Array.from(m.vectors, (n, g) =>
          tau === 'auto' ? tauScale * Math.max(m.nearestSqDistance[g] / n, 1e-12) : tau,
        );
      }
      const host = mapWeights(data, this.layout, codebooks, scales, this.tau);
      index = tf.tensor1d(host.index, 'int32');
      jacobian =
        d === 1
          ? tf.tensor2d(host.jacobian!, [rows, cols])
          : tf.tensor3d(host.jacobian!, [host.index.length, d, d]);
    } else {
      // every later step: on the weight's backend; only a finiteness flag, the codebooks and the
      // scales (G·K·d + rows numbers) come back, never the weight
      const [nonFinite, rounded] = await Promise.all([hasNonFinite(w), this.roundedParameters()]);
      if (nonFinite) this.checkFinite((await w.data()) as Float32Array);
      parameters = rounded;
      ({ index, jacobian } = mapWeightsOnDevice(
        w as tf.Tensor2D,
        this.layout,
        rounded.codebooks,
        rounded.scales,
        this.tau,
      ));
    }
    const { codebooks, scales, rawCodebooks, rawScales } = parameters;
    // the fraction of the mapping that changed: counted on the backend, read by describe()
    this.changedCount?.dispose();
    this.changedCount = this.lastIndex
      ? tf.tidy(() => tf.notEqual(index, this.lastIndex!).cast('float32').sum() as tf.Scalar)
      : undefined;
    this.lastIndex?.dispose();
    this.lastIndex = index.clone();
    this.disposeState();
    this.state = {
      index,
      jacobian,
      codebookRounding: tf.tensor2d(difference(codebooks, rawCodebooks), [codebooks.length / d, d]),
      scaleRounding: scales ? tf.tensor2d(difference(scales, rawScales!), [rows, 1]) : null,
      preparedFor: this.dataIds(w),
    };
  }

  /** NonFiniteError naming the first NaN/Inf weight. */
  private checkFinite(data: Float32Array): void {
    const cols = this.shape[1];
    for (let i = 0; i < data.length; i++)
      if (!Number.isFinite(data[i]))
        throw new NonFiniteError(
          `weight [${Math.floor(i / cols)}, ${i % cols}] is ${data[i]}: JLCM cannot palettize it`,
        );
  }

  /** The codebooks and scales as the forward uses them (fp16-rounded), and as stored. */
  private async roundedParameters() {
    const rawCodebooks = (await this.codebooks.data()) as Float32Array;
    const rawScales = this.scales ? ((await this.scales.data()) as Float32Array) : null;
    for (const [what, values] of [
      ['codebook', rawCodebooks],
      ['scale', rawScales ?? []],
    ] as const)
      for (let i = 0; i < values.length; i++)
        if (!Number.isFinite(values[i]))
          throw new NonFiniteError(`${what} entry ${i} is ${values[i]} (the training diverged)`);
    return {
      codebooks: roundToHalf(rawCodebooks, 'fp16'),
      scales: rawScales && roundToHalf(rawScales, 'fp16'),
      rawCodebooks,
      rawScales,
    };
  }

  private dataIds(w: tf.Tensor): object[] {
    return [w, ...this.variables()].map((t) => t.dataId);
  }

  /**
   * The hard-assigned weight s_r · c_g[idx] (float32, what the export dequantizes to), inside the
   * tape: codebooks and scales get its gradients, w gets the upstream gradient through the soft
   * mapping's Jacobian. Throws StateError if w, the codebooks or the scales changed since prepare().
   */
  apply(w: tf.Tensor): tf.Tensor2D {
    this.checkShape(w);
    const state = this.state;
    if (!state) throw new StateError('JlcmTensor.apply: call await prepare(w) first');
    if (this.dataIds(w).some((id, i) => id !== state.preparedFor[i]))
      throw new StateError(
        'JlcmTensor.apply: the weight, codebooks or scales changed since prepare(); call await prepare(w) after every update',
      );
    const [rows, cols] = this.shape;
    const d = this.config.clusterDim;
    return tf.tidy(() => {
      const entries = this.codebooks.reshape([-1, d]).add(state.codebookRounding);
      let hard = tf.gather(entries, state.index).reshape([rows, cols]);
      if (this.scales && state.scaleRounding) hard = hard.mul(this.scales.add(state.scaleRounding));
      const straightThrough = tf.customGrad(((weight: tf.Tensor, forward: tf.Tensor) => ({
        value: forward.clone(),
        gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
          const upstream = (Array.isArray(dy) ? dy[0] : dy) as tf.Tensor2D;
          const toWeight =
            d === 1
              ? upstream.mul(state.jacobian)
              : tf
                  .matMul(upstream.reshape([-1, 1, d]), state.jacobian as tf.Tensor3D)
                  .reshape([rows, cols]);
          return [toWeight, upstream];
        },
      })) as unknown as CustomGradFunc);
      return straightThrough(w, hard) as tf.Tensor2D;
    });
  }

  /**
   * The export: fp16 LUTs [codebooks, K, d], the index of every vector and the fp16 scales in
   * stored row order, the permutation (when not the identity) and the rows per codebook. Right
   * after prepare(w) the mapping is that prepare's (it dequantizes to exactly apply(w));
   * otherwise it is recomputed on the host from w and the current codebooks and scales.
   */
  async palettize(w: tf.Tensor): Promise<PaletteTensor> {
    if (!this.groups) throw new StateError('JlcmTensor.palettize: call await prepare(w) first');
    this.checkShape(w);
    const [rows, cols] = this.shape;
    const { clusterDim: d, bits } = this.config;
    const k = this.k;
    const { codebooks, scales } = await this.roundedParameters();
    // the step's mapping when w, codebooks and scales are those of the last prepare(), so that
    // the export is exactly the trained forward; otherwise the host mapping of w
    const state = this.state;
    const index =
      state && this.dataIds(w).every((id, i) => id === state.preparedFor[i])
        ? ((await state.index.data()) as Int32Array)
        : mapWeights((await w.data()) as Float32Array, this.layout, codebooks, scales, null).index;
    const { permutation, groupRows } = this.groups;
    const perRow = cols / d;
    const indices = new Uint8Array(rows * perRow);
    const storedScales = scales ? new Float32Array(rows) : undefined;
    permutation.forEach((row, stored) => {
      for (let v = 0; v < perRow; v++) indices[stored * perRow + v] = index[row * perRow + v] % k;
      if (storedScales) storedScales[stored] = scales![row];
    });
    const identity = permutation.every((row, stored) => row === stored);
    const equal = groupRows.every((n) => n === groupRows[0]);
    return {
      shape: [rows, cols],
      bits,
      clusterDim: d,
      groupSize: equal ? groupRows[0] : rows,
      groupRows: [...groupRows],
      lut: Uint16Array.from(codebooks, f32ToF16Bits),
      indices,
      scales: storedScales,
      permutation: identity ? undefined : Int32Array.from(permutation),
    };
  }

  /** The grouping, codebooks, temperatures and scales of the last prepare(). */
  async describe(): Promise<JlcmDescription> {
    if (!this.groups || !this.tau)
      throw new StateError('JlcmTensor.describe: call await prepare(w) first');
    const { codebooks, scales } = await this.roundedParameters();
    const entries = this.k * this.config.clusterDim;
    const groupOf = this.groups.groupOf;
    return {
      permutation: Int32Array.from(this.groups.permutation),
      groups: this.tau.map((tau, g) => ({
        rows: Int32Array.from(groupOf.keys()).filter((r) => groupOf[r] === g),
        tau,
        codebook: codebooks.slice(g * entries, (g + 1) * entries),
      })),
      scales,
      changedAssignments: this.changedCount
        ? (await this.changedCount.data())[0] / this.lastIndex!.size
        : 0,
    };
  }

  dispose(): void {
    this.disposeMapping();
    this.disposeState();
    for (const v of this.variables()) v.dispose();
  }

  private disposeMapping(): void {
    this.lastIndex?.dispose();
    this.changedCount?.dispose();
    this.lastIndex = undefined;
    this.changedCount = undefined;
  }

  private disposeState(): void {
    if (!this.state) return;
    const { index, jacobian, codebookRounding, scaleRounding } = this.state;
    tf.dispose([index, jacobian, codebookRounding, ...(scaleRounding ? [scaleRounding] : [])]);
    this.state = undefined;
  }

  private checkShape(w: tf.Tensor): void {
    if (w.rank !== 2 || w.shape[0] !== this.shape[0] || w.shape[1] !== this.shape[1])
      throw new ShapeError(
        `JlcmTensor expects a weight of shape [${this.shape}], got [${w.shape}]`,
      );
    if (w.dtype !== 'float32')
      throw new ShapeError(`JlcmTensor expects a float32 weight, got ${w.dtype}`);
  }
}

/** rounded − raw, exact in float32 (both are float32 and within a factor of two of each other). */
function difference(rounded: Float32Array, raw: Float32Array): Float32Array {
  return Float32Array.from(rounded, (x, i) => x - raw[i]);
}
