import type { PaletteTensor } from '@edkm/codec';
import {
  type HalfDtype,
  InvalidArgumentError,
  NonFiniteError,
  ShapeError,
  StateError,
  codeHistogram,
  copyInto,
  f32ToF16Bits,
  flushBackend,
  fromHalfBits,
  gatherAffine,
  gatherAffineByCode,
  gatherByCode,
  gatherRows,
  lookupByHalfCode,
  scatterAddByCode,
  scatterAddRows,
  softContract,
  tableBackward,
  tableIterate,
  tableIterateLayout,
  tf,
  toHalfBits,
} from '@edkm/core';
import type { Handle, Marshaler } from '@edkm/marshal';
import { type DkmConfig, defaultTauScale, resolveDkmConfig } from './config';
import { initCentroids } from './init';
import { attention, dkmPlain, iterate, tableGradients } from './math';
import { uniquePoints } from './unique';

/** tfjs's customGrad callback type (its variadic signature does not fit named parameters). */
type CustomGradFunc = Parameters<typeof tf.customGrad>[0];

/** What one group of rows (one LUT) keeps between prepare() and apply(). */
interface GroupState {
  rowStart: number;
  rows: number;
  /** Per-row scales [rows, 1] (perChannelScale), else null. */
  scale: tf.Tensor2D | null;
  tau: number;
  /** C_0 … C_T. */
  centroids: tf.Tensor2D[];
  /** plain: rounded − raw normalised weights [M, d] (straight-through rounding). */
  roundDelta?: tf.Tensor2D;
  /** edkm: distinct points [U, d], counts [U, 1], output table [U, d]. */
  points?: tf.Tensor2D;
  counts?: tf.Tensor2D;
  outTable?: tf.Tensor2D;
  /** edkm with code tables: table row of each 16-bit code (−1 absent), the present codes, W̃ per code. */
  codeToRow?: tf.Tensor1D;
  /** C_{T−1} and C_T [2, K]: the backward recomputes each weight's attention from them. */
  lastCentroids?: tf.Tensor2D;
  outByCode?: tf.Tensor2D;
  /** C_0 … C_T stacked [T + 1, K] (code tables: [maxIters + 1, K], rows past T unused). */
  centroidStack?: tf.Tensor2D;
  /** Code tables: T on the device ([1], float), and, once `settled`, C_0, C_T and T on the host. */
  steps?: tf.Tensor1D;
  settled?: Promise<void>;
  /**
   * Prepared on the device alone (prepareOnDevice): the table has 65,536 rows, the present codes
   * first (compacted on the device), and T and C_T reach the host only through settled().
   */
  onDevice?: boolean;
  /** prepareOnDevice: how many table rows are present codes ([1], on the device). */
  bound?: tf.Tensor1D;
  initial?: Float32Array;
  final?: Float32Array;
  iterationsRun?: number;
  /**
   * Per-code gradient where the table rows are not the codes (plain mode, uniquify: false): the
   * group of every vector [M] and the size of each group [G, 1].
   */
  codeRows?: tf.Tensor1D;
  codeCounts?: tf.Tensor2D;
  /** edkm: the table row of every vector, in contiguous shards: on the device, or marshaled. */
  index?: tf.Tensor1D[];
  indexHandles?: Handle[];
  distinct: number;
}

/** The palettized form of a weight: a LUT per group plus an n-bit index per vector (codec's form). */
export type Palettized = PaletteTensor;

/** DkmTensor's resumable state (see getState). */
export interface DkmState {
  step: number;
  warm: number[][];
  autoTau: number[];
}

/** How the eDKM index list is held (the paper's ablation: marshaling, uniquification, sharding). */
export interface DkmRuntimeOptions {
  /** Keep the index list off the device between uses (loaded for the forward and the backward). */
  marshal?: Marshaler;
  /** Split the index list into this many contiguous shards, processed one at a time. */
  shards?: number;
  /** Uniquify the weights (eDKM); false keeps one table row per vector (ablation baseline). */
  uniquify?: boolean;
  /**
   * Where eDKM finds each weight's table row. 'code' (default for clusterDim 1): kernels read
   * the 16-bit code straight from the weight's bits — no index list exists, the weights never
   * leave the device, only a 65,536-bin histogram is read back. 'index': an index list built on
   * the host (needed for clusterDim > 1, marshaling and sharding).
   */
  tables?: 'code' | 'index';
}

/**
 * DKM for one 2-D weight tensor [rows, cols] (HF linear layout: rows are output channels).
 * Call `await prepare(w)` whenever `w` changed (after each optimizer step), then `apply(w)` inside
 * the gradient tape: it returns the soft-clustered weight W̃ = A C and passes exact gradients back.
 */
export class DkmTensor {
  readonly config: DkmConfig;
  readonly shape: [number, number];
  private groups: GroupState[] = [];
  private warm: Float32Array[] = [];
  /** C_T of the last prepare per group, on the device ([1, K], updated in place: copyInto). */
  private warmDevice: tf.Tensor2D[] = [];
  /** All 65,536 codes' values [65536, 1] (non-finite codes as 0), for prepareOnDevice. */
  private codePoints?: tf.Tensor2D;
  /** 1 for finite codes, 0 for NaN/±Inf codes [65536, 1]. */
  private finiteCodes?: tf.Tensor2D;
  private autoTau: number[] = [];
  private preparedFor: object | undefined;
  private step = 0;

  private readonly runtime: DkmRuntimeOptions;
  /**
   * Where the last prepare() spent its time (code tables): waiting for the device histogram
   * (dispatch + read back) and the host's table work (the iterations run on the device,
   * unwaited). Diagnostic.
   */
  timings = { histogramMs: 0, hostMs: 0 };

  constructor(
    shape: [number, number],
    config: Partial<DkmConfig> = {},
    runtime: DkmRuntimeOptions = {},
  ) {
    this.config = resolveDkmConfig(config);
    this.runtime = runtime;
    if (
      runtime.shards !== undefined &&
      !(Number.isInteger(runtime.shards) && runtime.shards >= 1)
    ) {
      throw new InvalidArgumentError(`shards must be a positive integer, got ${runtime.shards}`);
    }
    const [rows, cols] = shape;
    if (!(Number.isInteger(rows) && Number.isInteger(cols) && rows > 0 && cols > 0)) {
      throw new ShapeError(`DKM needs a non-empty 2-D weight, got [${shape}]`);
    }
    if (cols % this.config.clusterDim !== 0) {
      throw new ShapeError(
        `clusterDim ${this.config.clusterDim} does not divide the row length ${cols}`,
      );
    }
    const groupSize = this.config.groupSize || rows;
    if (rows % groupSize !== 0)
      throw new ShapeError(`groupSize ${groupSize} does not divide the ${rows} rows`);
    const vectors = (groupSize * cols) / this.config.clusterDim;
    const k = 2 ** this.config.bits;
    if (k > vectors) {
      throw new InvalidArgumentError(
        `K = 2^${this.config.bits} = ${k} centroids exceed the ${vectors} vectors of a group`,
      );
    }
    this.shape = [rows, cols];
  }

  get k(): number {
    return 2 ** this.config.bits;
  }

  /**
   * What the next prepare() depends on besides the weight: the step counter, the warm-start
   * centroids and the automatic temperatures. JSON-serialisable (float32 values survive a JSON
   * round trip exactly), so a checkpoint can resume training bit for bit.
   */
  getState(): DkmState {
    if (this.groups.some((g) => (g.settled || g.onDevice) && g.iterationsRun === undefined))
      throw new StateError(
        "DkmTensor.getState: the last prepare()'s centroids are still on their way from the device; await dkm.settled() first",
      );
    return {
      step: this.step,
      warm: this.warm.map((c) => Array.from(c)),
      autoTau: [...this.autoTau],
    };
  }

  /** Restores getState()'s output (on a DkmTensor of the same shape and config). */
  setState(state: DkmState): void {
    const groups = this.shape[0] / (this.config.groupSize || this.shape[0]);
    const size = this.k * this.config.clusterDim;
    const ok =
      Number.isInteger(state?.step) &&
      state.step >= 0 &&
      Array.isArray(state.warm) &&
      state.warm.length <= groups &&
      state.warm.every((c) => Array.isArray(c) && c.length === size) &&
      Array.isArray(state.autoTau) &&
      state.autoTau.length <= groups;
    if (!ok)
      throw new InvalidArgumentError(
        `DKM state does not fit a [${this.shape}] weight with ${groups} group(s) of ${this.k}×${this.config.clusterDim} centroids`,
      );
    this.step = state.step;
    this.warm = state.warm.map((c) => Float32Array.from(c));
    this.autoTau = [...state.autoTau];
  }

  /**
   * Resolves once the last prepare()'s device results (T and C_T, which the next prepare's warm
   * start and getState need) are on the host; prepare() does not wait for them.
   */
  async settled(): Promise<void> {
    await Promise.all(this.groups.map((g) => g.settled));
    // prepared on the device (maybe replayed since): T and C_T read now
    await Promise.all(
      this.groups.map(async (g, i) => {
        if (!g.onDevice) return;
        const [last, steps] = await Promise.all([g.lastCentroids!.data(), g.steps!.data()]);
        g.final = (last as Float32Array).slice(this.k);
        g.iterationsRun = steps[0];
        this.warm[i] = g.final;
      }),
    );
  }

  /** Iterations the last prepare() ran, per group (after `await settled()`). */
  get iterations(): number[] {
    return this.groups.map((g) => {
      if (!g.settled && !g.onDevice) return g.centroids.length - 1;
      if (g.iterationsRun === undefined)
        throw new StateError('DkmTensor.iterations: await dkm.settled() first');
      return g.iterationsRun;
    });
  }

  /** Distinct points per group seen by the last prepare() (U of eDKM; M for plain). */
  get distinctPoints(): number[] {
    return this.groups.map((g) => g.distinct);
  }

  /** What the last prepare() computed per group: temperature, iterations, distinct points, C_0 and C_T. */
  async describe(): Promise<
    {
      tau: number;
      iterations: number;
      distinct: number;
      initial: Float32Array;
      final: Float32Array;
    }[]
  > {
    await this.settled();
    return Promise.all(
      this.groups.map(async (g) => ({
        tau: g.tau,
        iterations: g.iterationsRun ?? g.centroids.length - 1,
        distinct: g.distinct,
        initial: g.initial ?? ((await g.centroids[0].data()) as Float32Array),
        final: g.final ?? ((await g.centroids[g.centroids.length - 1].data()) as Float32Array),
      })),
    );
  }

  /**
   * Reads the weight (asynchronously), rounds it to the 16-bit dtype, uniquifies it (edkm),
   * initialises or warm-starts the centroids and runs the centroid iterations.
   */
  async prepare(w: tf.Tensor): Promise<void> {
    this.checkShape(w);
    const { clusterDim: d, weightDtype, perChannelScale, mode } = this.config;
    const [rows, cols] = this.shape;
    const groupSize = this.config.groupSize || rows;
    await this.settled(); // the previous step's C_T (the warm start) is on the host
    this.disposeGroups();
    const step = this.step++;
    if (this.usesCodeTables()) {
      this.timings = { histogramMs: 0, hostMs: 0 };
      await this.prepareCodeTables(w as tf.Tensor2D, step);
      this.preparedFor = w.dataId;
      return;
    }
    const data = (await w.data()) as Float32Array;
    for (let g = 0; g * groupSize < rows; g++) {
      const rowStart = g * groupSize;
      const raw = data.subarray(rowStart * cols, (rowStart + groupSize) * cols);
      let normalised = raw;
      let scale: Float32Array | null = null;
      if (perChannelScale) {
        scale = new Float32Array(groupSize);
        normalised = new Float32Array(raw.length);
        for (let r = 0; r < groupSize; r++) {
          let max = 0;
          for (let c = 0; c < cols; c++) max = Math.max(max, Math.abs(raw[r * cols + c]));
          scale[r] = max > 0 && Number.isFinite(max) ? max : 1;
          for (let c = 0; c < cols; c++) normalised[r * cols + c] = raw[r * cols + c] / scale[r];
        }
      }
      const codes = toHalfBits(normalised, weightDtype);
      checkFinite(codes, weightDtype, rowStart, cols);
      const rounded = fromHalfBits(codes, weightDtype);
      const unique =
        this.runtime.uniquify === false
          ? identityPoints(rounded, d)
          : uniquePoints(codes, d, weightDtype);
      const k = this.k;
      const c0 =
        this.config.warmStart && this.warm[g]
          ? this.warm[g]
          : initCentroids(
              unique.values,
              unique.counts,
              d,
              k,
              this.config.init,
              this.config.seed + g,
            );
      const tau = this.resolveTau(g, step, unique.values, unique.counts, c0, d);
      const state: GroupState = {
        rowStart,
        rows: groupSize,
        scale: scale ? tf.tensor2d(scale, [groupSize, 1]) : null,
        tau,
        centroids: [],
        distinct: mode === 'edkm' ? unique.u : rounded.length / d,
      };
      if (
        this.config.gradient === 'code' &&
        (mode === 'plain' || this.runtime.uniquify === false)
      ) {
        const groups =
          this.runtime.uniquify === false ? uniquePoints(codes, d, weightDtype) : unique;
        state.codeRows = tf.tensor1d(groups.rows, 'int32');
        state.codeCounts = tf.tensor2d(groups.counts, [groups.u, 1]);
      }
      const c0Tensor = tf.tensor2d(c0, [k, d]);
      if (mode === 'edkm') {
        state.points = tf.tensor2d(unique.values, [unique.u, d]);
        state.counts = tf.tensor2d(unique.counts, [unique.u, 1]);
        const shards = splitContiguous(
          unique.rows,
          Math.min(this.runtime.shards ?? 1, unique.rows.length),
        );
        if (this.runtime.marshal) {
          const marshal = this.runtime.marshal;
          // U ≤ 65,536 distinct 16-bit points (always, for clusterDim 1): a 16-bit index list
          const narrow = unique.u <= 65536;
          state.indexHandles = shards.map((part) =>
            marshal.saveHost(narrow ? Uint16Array.from(part) : part, [part.length], 'int32'),
          );
        } else {
          state.index = shards.map((part) => tf.tensor1d(part, 'int32'));
        }
        const it = await iterate(
          state.points,
          state.counts,
          c0Tensor,
          tau,
          this.config.maxIters,
          this.config.epsilon,
        );
        state.centroids = it.centroids;
        const T = it.iterations;
        state.outTable = tf.tidy(
          () =>
            tf.matMul(
              attention(state.points!, it.centroids[T - 1], tau),
              it.centroids[T],
            ) as tf.Tensor2D,
        );
      } else {
        const points = tf.tensor2d(rounded, [rounded.length / d, d]);
        const it = await iterate(
          points,
          null,
          c0Tensor,
          tau,
          this.config.maxIters,
          this.config.epsilon,
        );
        state.centroids = it.centroids;
        state.roundDelta = tf.tidy(
          () => points.sub(tf.tensor2d(normalised, [normalised.length / d, d])) as tf.Tensor2D,
        );
        points.dispose();
      }
      c0Tensor.dispose();
      this.warm[g] = (await state.centroids[state.centroids.length - 1].data()) as Float32Array;
      this.groups.push(state);
    }
    this.preparedFor = w.dataId;
  }

  private usesCodeTables(): boolean {
    const r = this.runtime;
    if (this.config.mode !== 'edkm' || this.config.clusterDim !== 1) return false;
    if (r.tables === 'index' || r.marshal || (r.shards ?? 1) > 1 || r.uniquify === false)
      return false;
    return true;
  }

  /** Per-row scales of a group (max |w|, 1 for all-zero rows), on the device. */
  private rowScales(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const max = tf.abs(x).max(1, true);
      return tf.where(tf.greater(max, 0), max, tf.onesLike(max)) as tf.Tensor2D;
    });
  }

  /** eDKM without an index list: histogram of codes on the device, iterations on the present codes. */
  private async prepareCodeTables(w: tf.Tensor2D, step: number): Promise<void> {
    const [rows, cols] = this.shape;
    const groupSize = this.config.groupSize || rows;
    const dtype = this.config.weightDtype;
    const k = this.k;
    for (let g = 0; g * groupSize < rows; g++) {
      const rowStart = g * groupSize;
      // one group: the weight itself (a slice is a copy on the device)
      const rowsOf = () => (groupSize === rows ? w : tf.slice(w, [rowStart, 0], [groupSize, cols]));
      const scale = this.config.perChannelScale ? tf.tidy(() => this.rowScales(rowsOf())) : null;
      const histogram = tf.tidy(() => {
        let x = rowsOf();
        if (scale) x = x.div(scale);
        return codeHistogram(x.reshape([-1]) as tf.Tensor1D, dtype);
      });
      const read = performance.now();
      const counts = (await histogram.data()) as Int32Array;
      histogram.dispose();
      const host = performance.now();
      this.timings.histogramMs += host - read;
      const expMask = dtype === 'bf16' ? 0x7f80 : 0x7c00;
      const present: number[] = [];
      let nonFinite = 0;
      for (let c = 0; c < 65536; c++) {
        if (counts[c] === 0) continue;
        if ((c & expMask) === expMask) nonFinite += counts[c];
        else present.push(c);
      }
      if (nonFinite) {
        scale?.dispose();
        throw new NonFiniteError(
          `${nonFinite} weight(s) in rows ${rowStart}..${rowStart + groupSize - 1} are NaN or ±Inf after ${dtype} rounding: DKM cannot cluster them`,
        );
      }
      const u = present.length;
      const values = fromHalfBits(Uint16Array.from(present), dtype);
      const weights = Float32Array.from(present, (c) => counts[c]);
      const codeToRow = new Int32Array(65536).fill(-1);
      present.forEach((c, row) => {
        codeToRow[c] = row;
      });
      const c0 =
        this.config.warmStart && this.warm[g]
          ? this.warm[g]
          : initCentroids(values, weights, 1, k, this.config.init, this.config.seed + g);
      const tau = this.resolveTau(g, step, values, weights, c0, 1);
      const state: GroupState = {
        rowStart,
        rows: groupSize,
        scale,
        tau,
        centroids: [],
        distinct: u,
      };
      state.points = tf.tensor2d(values, [u, 1]);
      state.counts = tf.tensor2d(weights, [u, 1]);
      state.codeToRow = tf.tensor1d(codeToRow, 'int32');
      // the iterations, their stop at epsilon and W̃ per value, on the device (the cpu plugin:
      // float64 on the host); nothing is waited for: T and C_T come back while the step runs
      const maxIters = this.config.maxIters;
      const flat = tf.tidy(() =>
        tableIterate(
          state.points!,
          state.counts!,
          tf.tensor2d(c0, [1, k]),
          tau,
          maxIters,
          this.config.epsilon,
        ),
      );
      this.takeTables(state, g, flat, u);
      state.initial = c0;
      const pending = Promise.all([state.lastCentroids!.data(), state.steps!.data()]);
      state.settled = pending.then(([last, steps]) => {
        state.final = (last as Float32Array).slice(k);
        state.iterationsRun = steps[0];
        if (this.groups.includes(state)) this.warm[g] = state.final;
      });
      this.groups.push(state);
      this.timings.hostMs += performance.now() - host;
    }
  }

  /**
   * The parts of TableIterate's flat result (a [u]-row table, disposed here) that the forward and
   * backward use: C_0 … C_I, T, C_{T−1}; C_T, W̃ gathered to each code (0 where absent); and C_T
   * copied into the group's device warm start, in place.
   */
  private takeTables(state: GroupState, g: number, flat: tf.Tensor1D, u: number): void {
    const k = this.k;
    const maxIters = this.config.maxIters;
    const layout = tableIterateLayout(u, k, maxIters);
    tf.tidy(() => {
      const part = (at: number, size: number) => tf.slice(flat, [at], [size]);
      state.centroidStack = tf.keep(
        part(layout.centroids, (maxIters + 1) * k).reshape([maxIters + 1, k]) as tf.Tensor2D,
      );
      state.steps = tf.keep(part(layout.steps, 1) as tf.Tensor1D);
      state.lastCentroids = tf.keep(part(layout.last, 2 * k).reshape([2, k]) as tf.Tensor2D);
      state.outByCode = tf.keep(
        gatherRows(part(layout.output, u).reshape([u, 1]) as tf.Tensor2D, state.codeToRow!),
      );
      if (!this.warmDevice[g]) this.warmDevice[g] = tf.keep(tf.zeros([1, k]) as tf.Tensor2D);
      copyInto(part(layout.last + k, k), this.warmDevice[g]);
    });
    flat.dispose();
  }

  /**
   * Whether prepareOnDevice can run: eDKM on code tables, a fixed temperature (a number, or a
   * data-driven rule once the first prepare fixed it; no schedule), warm starts, and a previous
   * prepare() whose centroids are on the device.
   */
  canPrepareOnDevice(): boolean {
    const groups = this.shape[0] / (this.config.groupSize || this.shape[0]);
    return (
      this.usesCodeTables() &&
      this.config.warmStart &&
      Array.from({ length: groups }, (_, g) => this.fixedTau(g)).every((t) => t !== undefined) &&
      this.warmDevice.length === groups
    );
  }

  /**
   * Group g's temperature where it needs no data: a number, or a rule's value that the first
   * prepare() fixed (resolveTau's); undefined under a schedule or before that prepare.
   */
  private fixedTau(g: number): number | undefined {
    if (this.config.tauSchedule) return undefined;
    return typeof this.config.tau === 'number' ? this.config.tau : this.autoTau[g];
  }

  /**
   * prepare() with nothing read back or computed on the host: the code histogram, the list of
   * present codes (compacted on the device: a prefix count and a search), the iterations
   * (warm-started from the last C_T on the device) and the tables all on the device — the same
   * table as prepare()'s, in a 65,536-row buffer whose length is known on the device only (the
   * table kernels stop there). Synchronous, so a training step that includes it can be recorded
   * as a device graph and replayed. Needs canPrepareOnDevice(). Non-finite weights are not
   * reported here (their codes weigh 0): a step that produced them has a non-finite gradient
   * norm, which the trainer's divergence check reports.
   */
  prepareOnDevice(w: tf.Tensor): void {
    this.checkShape(w);
    if (!this.canPrepareOnDevice())
      throw new StateError(
        'DkmTensor.prepareOnDevice: needs code tables, a fixed temperature, warm starts and a first prepare() (see canPrepareOnDevice)',
      );
    const [rows, cols] = this.shape;
    const groupSize = this.config.groupSize || rows;
    const dtype = this.config.weightDtype;
    const k = this.k;
    const maxIters = this.config.maxIters;
    const u = 65536;
    this.disposeGroups();
    this.step++;
    if (!this.codePoints) {
      const codes = Uint16Array.from({ length: u }, (_, c) => c);
      const values = fromHalfBits(codes, dtype);
      const finite = values.map((v) => (Number.isFinite(v) ? 1 : 0));
      this.codePoints = tf.tensor2d(
        values.map((v) => (Number.isFinite(v) ? v : 0)),
        [u, 1],
      );
      this.finiteCodes = tf.tensor2d(finite, [u, 1]);
    }
    for (let g = 0; g * groupSize < rows; g++) {
      const rowStart = g * groupSize;
      const rowsOf = () =>
        groupSize === rows
          ? (w as tf.Tensor2D)
          : tf.slice(w as tf.Tensor2D, [rowStart, 0], [groupSize, cols]);
      const scale = this.config.perChannelScale ? tf.tidy(() => this.rowScales(rowsOf())) : null;
      // the present codes compacted on the device, in code order (as prepare() lists them):
      // row r of the table is the code c with r = (present codes below c); rows past the last
      // present code have count 0 (and value 0), and `bound` = how many are present
      const [points, counts, codeToRow, bound] = tf.tidy(() => {
        let x = rowsOf();
        if (scale) x = x.div(scale);
        const histogram = codeHistogram(x.reshape([-1]) as tf.Tensor1D, dtype);
        const all = histogram.toFloat().mul(this.finiteCodes!.reshape([u]));
        const present = tf.greater(all, 0);
        const csum = tf.cumsum(present.toFloat()); // exact: ≤ 65,536
        const toRow = tf.where(present, csum.sub(1), tf.fill([u], -1)).toInt();
        // the code of row r: the first c whose running count reaches r + 1 (u: none)
        const codeOf = tf.searchSorted(csum, tf.range(1, u + 1), 'left');
        const valid = tf.less(codeOf, u);
        const safe = tf.minimum(codeOf, tf.scalar(u - 1, 'int32'));
        const zero = tf.zeros([u]);
        const pts = tf.where(valid, tf.gather(this.codePoints!.reshape([u]), safe), zero);
        const cnt = tf.where(valid, tf.gather(all, safe), zero);
        return [
          pts.reshape([u, 1]) as tf.Tensor2D,
          cnt.reshape([u, 1]) as tf.Tensor2D,
          toRow as tf.Tensor1D,
          csum.slice([u - 1], [1]) as tf.Tensor1D,
        ];
      });
      const tau = this.fixedTau(g)!;
      const flat = tableIterate(
        points,
        counts,
        this.warmDevice[g],
        tau,
        maxIters,
        this.config.epsilon,
        bound,
      );
      const state: GroupState = {
        rowStart,
        rows: groupSize,
        scale,
        tau,
        centroids: [],
        distinct: u,
        onDevice: true,
        points,
        counts,
        codeToRow,
        bound,
      };
      this.takeTables(state, g, flat, u);
      this.groups.push(state);
    }
    this.preparedFor = w.dataId;
  }

  /**
   * A recorded step that included prepareOnDevice() was replayed: the step counter moves on and
   * T and C_T must be read again (settled()) before getState().
   */
  replayedPrepare(): void {
    this.step++;
    for (const g of this.groups) if (g.onDevice) g.iterationsRun = undefined;
  }

  /** The soft-clustered weight (differentiable in `w`). `w` must be what prepare() saw. */
  apply(w: tf.Tensor): tf.Tensor2D {
    this.checkShape(w);
    if (this.preparedFor !== w.dataId) {
      throw new StateError(
        'DkmTensor.apply: the weight changed since prepare(); call await prepare(w) after every update',
      );
    }
    const [, cols] = this.shape;
    const d = this.config.clusterDim;
    return tf.tidy(() => {
      const parts = this.groups.map((g) => {
        // one group: the weight itself (a slice would copy it, and its gradient pad a copy back)
        let x =
          g.rows === this.shape[0]
            ? (w as tf.Tensor2D)
            : tf.slice(w as tf.Tensor2D, [g.rowStart, 0], [g.rows, cols]);
        if (g.scale) x = x.div(g.scale);
        let vectors = x.reshape([-1, d]) as tf.Tensor2D;
        if (g.codeRows) vectors = averageGradientByGroup(vectors, g.codeRows, g.codeCounts!);
        const clustered =
          this.config.mode === 'plain'
            ? this.applyPlain(g, vectors)
            : g.outByCode
              ? this.applyByCode(g, vectors)
              : this.applyEdkm(g, vectors);
        let y = clustered.reshape([g.rows, cols]);
        if (g.scale) y = y.mul(g.scale);
        return y;
      });
      return (parts.length === 1 ? parts[0] : tf.concat(parts, 0)) as tf.Tensor2D;
    });
  }

  private applyPlain(g: GroupState, x: tf.Tensor2D): tf.Tensor2D {
    const v = x.add(g.roundDelta!) as tf.Tensor2D; // forward: the rounded value; gradient: straight through
    return dkmPlain(v, g.centroids[0], g.tau, g.centroids.length - 1);
  }

  private applyByCode(g: GroupState, x: tf.Tensor2D): tf.Tensor2D {
    const dtype = this.config.weightDtype;
    const op = tf.customGrad(((input: tf.Tensor, save: tf.GradSaveFunc) => {
      const flat = input.reshape([-1]) as tf.Tensor1D; // a view of the weights: no copy
      save([flat]);
      return {
        value: gatherByCode(g.outByCode!, flat, dtype),
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const upstream = ((Array.isArray(dy) ? dy[0] : dy) as tf.Tensor).reshape([
            -1,
          ]) as tf.Tensor1D;
          const weights = saved[0] as tf.Tensor1D;
          // 5 dispatches, no per-value scatter: the backward table by code, then one affine pass
          // per weight by its own code
          return tf.tidy(() => {
            const byCode = this.codeGradientTable(g, weights, upstream);
            return [gatherAffineByCode(byCode, weights, upstream, dtype).reshape([-1, 1])];
          });
        },
      };
    }) as unknown as CustomGradFunc);
    return op(x) as tf.Tensor2D;
  }

  /**
   * y = x · W̃ᵀ, a linear layer on the soft-clustered weight (HF layout [out, in]), without keeping
   * W̃: the forward builds W̃, multiplies and frees it; the backward rebuilds it for dx, then turns
   * dW̃ = dyᵀ x into dW in place. Same values and gradients as `matMul(x, apply(w), false, true)`,
   * 4 bytes per weight less for as long as the backward pass has not reached this layer (tfjs's
   * matMul keeps W̃ until then), and the gradient needs no second N-long buffer. Configurations
   * without code tables (clusterDim > 1, groups, per-channel scales, marshaling, sharding) take
   * that unfused form.
   */
  linear(x: tf.Tensor2D, w: tf.Tensor): tf.Tensor2D {
    this.checkShape(w);
    const g = this.groups[0];
    if (!(this.groups.length === 1 && g.outByCode && !g.scale))
      return tf.tidy(() => tf.matMul(x, this.apply(w), false, true));
    if (this.preparedFor !== w.dataId) {
      throw new StateError(
        'DkmTensor.linear: the weight changed since prepare(); call await prepare(w) after every update',
      );
    }
    if (x.rank !== 2 || x.shape[1] !== this.shape[1])
      throw new ShapeError(
        `DkmTensor.linear: x must be [tokens, ${this.shape[1]}], got [${x.shape}]`,
      );
    const dtype = this.config.weightDtype;
    const soft = (weight: tf.Tensor) =>
      gatherByCode(g.outByCode!, weight.reshape([-1]) as tf.Tensor1D, dtype).reshape(this.shape);
    const op = tf.customGrad(((input: tf.Tensor2D, weight: tf.Tensor2D, save: tf.GradSaveFunc) => {
      save([input, weight]);
      const value = tf.tidy(() => tf.matMul(input, soft(weight) as tf.Tensor2D, false, true));
      flushBackend(); // W̃'s buffer back to the pool before anything else is allocated
      return {
        value,
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const upstream = (Array.isArray(dy) ? dy[0] : dy) as tf.Tensor2D;
          const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
          const dx = tf.tidy(() => tf.matMul(upstream, soft(ws) as tf.Tensor2D));
          flushBackend();
          const dw = tf.tidy(() => {
            const flatW = ws.reshape([-1]) as tf.Tensor1D;
            const dwt = tf.matMul(upstream, xs, true, false).reshape([-1]) as tf.Tensor1D;
            const byCode = this.codeGradientTable(g, flatW, dwt);
            return gatherAffineByCode(byCode, flatW, dwt, dtype, { inPlace: true }).reshape(
              this.shape,
            );
          });
          return [dx, dw];
        },
      };
    }) as unknown as CustomGradFunc);
    return op(x, w) as tf.Tensor2D;
  }

  /**
   * The code path's backward, short of the last per-weight pass: [65536, 4] rows (J, h, …) by code,
   * from the upstream gradient contracted with each weight's own attention row (a deterministic
   * reduction) and the fused table adjoint.
   */
  private codeBackwardTable(
    g: GroupState,
    weights: tf.Tensor1D,
    upstream: tf.Tensor1D,
  ): tf.Tensor2D {
    return tf.tidy(() => {
      const dtype = this.config.weightDtype;
      const k = g.centroidStack!.shape[1];
      const seed = softContract(weights, upstream, g.lastCentroids!, { dtype, tau: g.tau }).reshape(
        [2, k],
      );
      const terms = tableBackward(
        seed as tf.Tensor2D,
        g.points!,
        g.counts!,
        g.centroidStack!,
        g.tau,
        g.steps,
        g.bound,
      );
      return gatherRows(terms, g.codeToRow!);
    });
  }

  /**
   * The [65536, C] table whose affine pass g·T[code, 0] + T[code, 1] gives each weight's gradient.
   * 'weight': the per-weight DKM gradient J·g_i + h. 'code': the mean of that over the weights
   * sharing the code, J·ḡ + h with ḡ the code's mean upstream gradient (a deterministic
   * fixed-point scatter-add), folded into the constant column so the same pass applies it.
   */
  private codeGradientTable(
    g: GroupState,
    weights: tf.Tensor1D,
    upstream: tf.Tensor1D,
  ): tf.Tensor2D {
    const byCode = this.codeBackwardTable(g, weights, upstream);
    if (this.config.gradient === 'weight') return byCode;
    return tf.tidy(() => {
      const sums = scatterAddByCode(upstream.reshape([-1, 1]), weights, this.config.weightDtype);
      const counts = gatherRows(g.counts!, g.codeToRow!);
      const mean = sums.div(tf.maximum(counts, 1));
      const jacobian = byCode.slice([0, 0], [-1, 1]);
      const shared = byCode.slice([0, 1], [-1, 1]);
      return tf.concat([tf.zerosLike(mean), jacobian.mul(mean).add(shared)], 1) as tf.Tensor2D;
    });
  }

  /** The index shards on the device (loaded from the marshaler when offloaded; caller's scope disposes). */
  private indexShards(g: GroupState): tf.Tensor1D[] {
    const marshal = this.runtime.marshal;
    return g.index ?? g.indexHandles!.map((h) => marshal!.load(h) as tf.Tensor1D);
  }

  private applyEdkm(g: GroupState, x: tf.Tensor2D): tf.Tensor2D {
    const d = this.config.clusterDim;
    // the forward value comes from the prepared table; `input` only anchors the gradient
    const op = tf.customGrad(((_input: tf.Tensor) => {
      const value = tf.tidy(() => {
        const parts = this.indexShards(g).map((idx) => gatherRows(g.outTable!, idx));
        return parts.length === 1 ? parts[0] : tf.concat(parts, 0);
      });
      if (this.runtime.marshal) flushBackend(); // the loaded index list is freed now, not at the next submit
      return {
        value,
        gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
          const upstream = (Array.isArray(dy) ? dy[0] : dy) as tf.Tensor2D;
          return tf.tidy(() => {
            const u = g.points!.shape[0];
            const shards = this.indexShards(g);
            const offsets = shardOffsets(shards);
            const slices = shards.map((idx, s) =>
              shards.length === 1 ? upstream : upstream.slice([offsets[s], 0], [idx.shape[0], d]),
            );
            let gu = scatterAddRows(slices[0], shards[0], u);
            for (let s = 1; s < shards.length; s++)
              gu = gu.add(scatterAddRows(slices[s], shards[s], u));
            const { jacobian, shared } = tableGradients(
              gu,
              g.points!,
              g.counts!,
              g.centroids,
              g.tau,
            );
            if (this.config.gradient === 'code') {
              // every vector of a distinct point gets the mean of their gradients: ḡ·J + h per row
              const mean = gu.div(g.counts!);
              const perRow =
                d === 1
                  ? mean.mul(jacobian).add(shared)
                  : tf
                      .matMul(mean.reshape([-1, 1, d]), jacobian.reshape([-1, d, d]))
                      .reshape([-1, d])
                      .add(shared);
              const rows = shards.map((idx) => gatherRows(perRow as tf.Tensor2D, idx));
              return [rows.length === 1 ? rows[0] : tf.concat(rows, 0)];
            }
            const table = tf.concat([jacobian, shared], 1); // [U, d·d + d]
            const grads = shards.map((idx, s) => {
              // d = 1: one fused pass g·J[idx] + h[idx]
              if (d === 1)
                return gatherAffine(table, idx, slices[s].reshape([-1])).reshape([-1, 1]);
              const perValue = gatherRows(table, idx);
              const jac = perValue.slice([0, 0], [-1, d * d]);
              const own = perValue.slice([0, d * d], [-1, d]);
              // dW_b = Σ_a g_a J[a,b] + h_b
              return tf
                .matMul(slices[s].reshape([-1, 1, d]), jac.reshape([-1, d, d]))
                .reshape([-1, d])
                .add(own);
            });
            return [grads.length === 1 ? grads[0] : tf.concat(grads, 0)];
          });
        },
      };
    }) as unknown as CustomGradFunc);
    return op(x) as tf.Tensor2D;
  }

  /**
   * Hard assignment: fp16 LUTs (the last centroids of each group) and the index of the nearest
   * LUT entry for every vector of `w` (normalised and rounded as in prepare()).
   */
  async palettize(w: tf.Tensor): Promise<Palettized> {
    if (!this.groups.length) throw new StateError('DkmTensor.palettize: call prepare(w) first');
    this.checkShape(w);
    const [rows, cols] = this.shape;
    const d = this.config.clusterDim;
    const k = this.k;
    const groupSize = this.config.groupSize || rows;
    const data = (await w.data()) as Float32Array;
    const lut = new Uint16Array((rows / groupSize) * k * d);
    const indices = new Uint8Array((rows * cols) / d);
    const scales = this.config.perChannelScale ? new Float32Array(rows) : undefined;
    for (const [gi, g] of this.groups.entries()) {
      await g.settled;
      const c = g.final ?? ((await g.centroids[g.centroids.length - 1].data()) as Float32Array);
      const groupLut = lut.subarray(gi * k * d, (gi + 1) * k * d);
      for (let i = 0; i < k * d; i++) groupLut[i] = f32ToF16Bits(c[i]);
      const centroids = fromHalfBits(groupLut, 'fp16');
      let normalised = data.subarray(g.rowStart * cols, (g.rowStart + g.rows) * cols);
      if (scales && g.scale) {
        const s = (await g.scale.data()) as Float32Array;
        scales.set(s, g.rowStart);
        normalised = normalised.map((x, i) => x / s[Math.floor(i / cols)]);
      }
      const offset = (g.rowStart * cols) / d;
      if (d === 1) {
        // scalars: the nearest entry of each of the 65,536 codes, then one lookup per weight
        // (one pass over the weight, no uniquify: a 7B model has 6.5 billion of them)
        const table = nearestByCode(centroids, this.config.weightDtype);
        lookupByHalfCode(normalised, this.config.weightDtype, table, indices.subarray(offset));
        continue;
      }
      const codes = toHalfBits(normalised, this.config.weightDtype);
      const unique = uniquePoints(codes, d, this.config.weightDtype);
      const nearest = new Uint8Array(unique.u);
      for (let u = 0; u < unique.u; u++) {
        let best = Number.POSITIVE_INFINITY;
        for (let j = 0; j < k; j++) {
          let dist = 0;
          for (let b = 0; b < d; b++)
            dist += (unique.values[u * d + b] - centroids[j * d + b]) ** 2;
          if (dist < best) {
            best = dist;
            nearest[u] = j;
          }
        }
      }
      for (let i = 0; i < unique.rows.length; i++) indices[offset + i] = nearest[unique.rows[i]];
    }
    return {
      shape: [rows, cols],
      bits: this.config.bits,
      clusterDim: d,
      groupSize,
      lut,
      indices,
      scales,
    };
  }

  dispose(): void {
    this.disposeGroups();
    this.warm = [];
    tf.dispose([...this.warmDevice, this.codePoints ?? [], this.finiteCodes ?? []].flat());
    this.warmDevice = [];
    this.codePoints = undefined;
    this.finiteCodes = undefined;
  }

  private disposeGroups(): void {
    for (const g of this.groups) {
      g.scale?.dispose();
      g.roundDelta?.dispose();
      g.points?.dispose();
      g.counts?.dispose();
      for (const t of g.index ?? []) t.dispose();
      for (const h of g.indexHandles ?? []) this.runtime.marshal!.release(h);
      g.outTable?.dispose();
      g.codeRows?.dispose();
      g.codeCounts?.dispose();
      g.codeToRow?.dispose();
      g.bound?.dispose();
      g.outByCode?.dispose();
      g.centroidStack?.dispose();
      const reading = [g.lastCentroids, g.steps].filter((t) => t !== undefined);
      // a read still on its way (prepareOnDevice does not wait for it): disposed once it lands
      if (g.settled && g.iterationsRun === undefined)
        void g.settled.then(
          () => tf.dispose(reading),
          () => tf.dispose(reading),
        );
      else tf.dispose(reading);
      for (const c of g.centroids) c.dispose();
    }
    this.groups = [];
  }

  private resolveTau(
    g: number,
    step: number,
    values: Float32Array,
    counts: Float32Array,
    c0: Float32Array,
    d: number,
  ): number {
    if (this.config.tauSchedule) {
      const tau = this.config.tauSchedule(step);
      if (!(tau > 0 && Number.isFinite(tau)))
        throw new InvalidArgumentError(`tauSchedule(${step}) returned ${tau}; it must be positive`);
      return tau;
    }
    const rule = this.config.tau;
    if (typeof rule === 'number') return rule;
    if (this.autoTau[g] === undefined) {
      // fixed at the first prepare (and kept in the state, so a resumed run uses the same τ)
      const spread =
        rule === 'variance' ? variance(values, counts, d) : nearestSpread(values, counts, c0, d);
      const scale = this.config.tauScale ?? defaultTauScale[rule];
      this.autoTau[g] = scale * (spread > 0 ? spread : 1e-12);
    }
    return this.autoTau[g];
  }

  private checkShape(w: tf.Tensor): void {
    if (w.rank !== 2 || w.shape[0] !== this.shape[0] || w.shape[1] !== this.shape[1]) {
      throw new ShapeError(`DkmTensor expects a weight of shape [${this.shape}], got [${w.shape}]`);
    }
    if (w.dtype !== 'float32')
      throw new ShapeError(`DkmTensor expects a float32 weight, got ${w.dtype}`);
  }
}

function checkFinite(
  codes: Uint16Array,
  dtype: 'bf16' | 'fp16',
  rowStart: number,
  cols: number,
): void {
  const expMask = dtype === 'bf16' ? 0x7f80 : 0x7c00;
  for (let i = 0; i < codes.length; i++) {
    if ((codes[i] & expMask) === expMask) {
      const row = rowStart + Math.floor(i / cols);
      throw new NonFiniteError(
        `weight [${row}, ${i % cols}] is not finite (NaN or ±Inf after ${dtype} rounding): DKM cannot cluster it`,
      );
    }
  }
}

/**
 * Identity in the forward pass; in the backward, every row's gradient becomes the mean over the
 * rows of its group (rows [M] → group, counts [G, 1] the size of each group).
 */
function averageGradientByGroup(
  x: tf.Tensor2D,
  rows: tf.Tensor1D,
  counts: tf.Tensor2D,
): tf.Tensor2D {
  const op = tf.customGrad(((input: tf.Tensor2D) => ({
    value: input.clone(),
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
      const upstream = (Array.isArray(dy) ? dy[0] : dy) as tf.Tensor2D;
      return tf.tidy(() => {
        const sums = scatterAddRows(upstream, rows, counts.shape[0]);
        return [gatherRows(sums.div(counts) as tf.Tensor2D, rows)];
      });
    },
  })) as unknown as CustomGradFunc);
  return op(x) as tf.Tensor2D;
}

/** Count-weighted variance of the points (summed over the d coordinates). */
function variance(values: Float32Array, counts: Float32Array, d: number): number {
  let mass = 0;
  const mean = new Float64Array(d);
  for (let u = 0; u < counts.length; u++) {
    mass += counts[u];
    for (let b = 0; b < d; b++) mean[b] += counts[u] * values[u * d + b];
  }
  for (let b = 0; b < d; b++) mean[b] /= mass;
  let total = 0;
  for (let u = 0; u < counts.length; u++)
    for (let b = 0; b < d; b++) total += counts[u] * (values[u * d + b] - mean[b]) ** 2;
  return total / mass;
}

/** Count-weighted mean squared distance of a point to its nearest centroid. */
function nearestSpread(
  values: Float32Array,
  counts: Float32Array,
  c0: Float32Array,
  d: number,
): number {
  const k = c0.length / d;
  let total = 0;
  let mass = 0;
  for (let u = 0; u < counts.length; u++) {
    let best = Number.POSITIVE_INFINITY;
    for (let j = 0; j < k; j++) {
      let dist = 0;
      for (let b = 0; b < d; b++) dist += (values[u * d + b] - c0[j * d + b]) ** 2;
      if (dist < best) best = dist;
    }
    total += best * counts[u];
    mass += counts[u];
  }
  return total / mass;
}

/** Contiguous, balanced parts of an index list. */
function splitContiguous(rows: Int32Array, parts: number): Int32Array[] {
  const out: Int32Array[] = [];
  for (let p = 0; p < parts; p++) {
    out.push(
      rows.subarray(
        Math.floor((p * rows.length) / parts),
        Math.floor(((p + 1) * rows.length) / parts),
      ),
    );
  }
  return out;
}

function shardOffsets(shards: tf.Tensor1D[]): number[] {
  const offsets = [0];
  for (const s of shards) offsets.push(offsets[offsets.length - 1] + s.shape[0]);
  return offsets;
}

/** One table row per vector (no uniquification): the ablation baseline. */
function identityPoints(values: Float32Array, d: number) {
  const m = values.length / d;
  return {
    values,
    counts: new Float32Array(m).fill(1),
    rows: Int32Array.from({ length: m }, (_, i) => i),
    u: m,
  };
}

/**
 * For every 16-bit code of `dtype`, the index of the nearest of the scalar `centroids` (the first
 * on ties; 0 for NaN codes), as hard assignment picks it for a weight of that value.
 */
function nearestByCode(centroids: Float32Array, dtype: HalfDtype): Uint8Array {
  const values = fromHalfBits(
    Uint16Array.from({ length: 65536 }, (_, c) => c),
    dtype,
  );
  const table = new Uint8Array(65536);
  const k = centroids.length;
  for (let c = 0; c < 65536; c++) {
    let best = Number.POSITIVE_INFINITY;
    for (let j = 0; j < k; j++) {
      const dist = (values[c] - centroids[j]) ** 2;
      if (dist < best) {
        best = dist;
        table[c] = j;
      }
    }
  }
  return table;
}
