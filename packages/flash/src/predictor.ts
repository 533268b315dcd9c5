import { FormatError, InvalidArgumentError, tf } from '@edkm/core';
import { SafetensorsFile, writeSafetensors } from '@edkm/llama';

/** The neurons a forward pass of T tokens computes in one FFN layer. */
export interface NeuronSelection {
  /** Ascending ids of every neuron some token needs. */
  neurons: Int32Array;
  /** [T, neurons.length]: 1 where the token uses the neuron; absent when every token uses all. */
  mask?: Float32Array;
}

/** Says which FFN neurons each token needs, from the FFN input x [T, hidden] of a layer. */
export interface NeuronPredictor {
  readonly name: string;
  /** Bytes the predictor keeps in memory (0 or absent for 'all'; the oracle's test weights are not counted). */
  readonly bytes?: number;
  select(layer: number, x: tf.Tensor2D): Promise<NeuronSelection>;
  dispose(): void;
}

export interface SelectOptions {
  /** Neurons per token: a count (≥ 1) or a fraction of the layer (0 < topK < 1). */
  topK?: number;
  /** Only neurons scoring above this (combined with topK: the top k of those). */
  threshold?: number;
}

/** Neurons per token for a layer of `neurons`, from topK as a count or a fraction. */
export function resolveTopK(topK: number | undefined, neurons: number): number {
  if (topK === undefined) return neurons;
  if (!(topK > 0)) throw new InvalidArgumentError(`topK must be positive, got ${topK}`);
  if (topK < 1) return Math.max(1, Math.round(topK * neurons));
  if (!Number.isInteger(topK))
    throw new InvalidArgumentError(`topK ≥ 1 must be an integer, got ${topK}`);
  return Math.min(topK, neurons);
}

/** Per token, the top-k / above-threshold neurons of `scores` [T, I]; their union and mask. */
export function selectFromScores(
  scores: Float32Array,
  T: number,
  I: number,
  opts: SelectOptions,
): NeuronSelection {
  const k = resolveTopK(opts.topK, I);
  const threshold = opts.threshold ?? Number.NEGATIVE_INFINITY;
  const chosen = new Uint8Array(T * I);
  const sorted = new Float32Array(I);
  for (let t = 0; t < T; t++) {
    const row = scores.subarray(t * I, (t + 1) * I);
    let cut = threshold;
    if (k < I) {
      sorted.set(row);
      sorted.sort();
      cut = Math.max(cut, sorted[I - k]);
    }
    let taken = 0;
    for (let i = 0; i < I && taken < k; i++)
      if (row[i] >= cut && row[i] > threshold) {
        chosen[t * I + i] = 1;
        taken++;
      }
  }
  return fromChoices(chosen, T, I);
}

/** Union and mask of per-token choices [T, I] (1 = used). */
export function fromChoices(chosen: Uint8Array, T: number, I: number): NeuronSelection {
  const any = new Uint8Array(I);
  for (let t = 0; t < T; t++) for (let i = 0; i < I; i++) any[i] |= chosen[t * I + i];
  const neurons: number[] = [];
  for (let i = 0; i < I; i++) if (any[i]) neurons.push(i);
  const n = neurons.length;
  let uniform = true;
  for (let t = 0; t < T && uniform; t++)
    for (const i of neurons)
      if (!chosen[t * I + i]) {
        uniform = false;
        break;
      }
  if (uniform) return { neurons: Int32Array.from(neurons) };
  const mask = new Float32Array(T * n);
  for (let t = 0; t < T; t++)
    for (let j = 0; j < n; j++) mask[t * n + j] = chosen[t * I + neurons[j]];
  return { neurons: Int32Array.from(neurons), mask };
}

/** Every neuron, always: the exact model. */
export class AllNeurons implements NeuronPredictor {
  readonly name = 'all';
  private readonly neurons: Int32Array;
  constructor(intermediateSize: number) {
    this.neurons = Int32Array.from({ length: intermediateSize }, (_, i) => i);
  }
  async select(): Promise<NeuronSelection> {
    return { neurons: this.neurons };
  }
  dispose(): void {}
}

/** |silu(g) · u| per neuron from gate and up pre-activations [T, I]. */
function swigluMagnitude(g: tf.Tensor, u: tf.Tensor): tf.Tensor2D {
  return tf.abs(tf.mul(tf.mul(g, tf.sigmoid(g)), u)) as tf.Tensor2D;
}

/** Full gate and up weights of one layer, [I, H] row-major float32. */
export interface GateUpWeights {
  gate: Float32Array;
  up: Float32Array;
}

/**
 * The exact activations |silu(x·Wgᵀ) · (x·Wuᵀ)| from the full weights (for testing and for
 * measuring what a perfect predictor would give): top-k / above-threshold of those, or every
 * neuron with a non-zero activation when neither is given.
 */
export class OraclePredictor implements NeuronPredictor {
  readonly name: string;
  private readonly gate: tf.Tensor2D[];
  private readonly up: tf.Tensor2D[];
  constructor(
    layers: GateUpWeights[],
    hiddenSize: number,
    private readonly opts: SelectOptions = {},
  ) {
    const I = layers[0].gate.length / hiddenSize;
    this.gate = layers.map((w) => tf.tensor2d(w.gate, [I, hiddenSize]));
    this.up = layers.map((w) => tf.tensor2d(w.up, [I, hiddenSize]));
    this.name = `oracle${opts.topK !== undefined ? ` top-${opts.topK}` : ''}`;
  }

  async select(layer: number, x: tf.Tensor2D): Promise<NeuronSelection> {
    const scores = tf.tidy(() =>
      swigluMagnitude(
        tf.matMul(x, this.gate[layer], false, true),
        tf.matMul(x, this.up[layer], false, true),
      ),
    );
    const data = (await scores.data()) as Float32Array;
    scores.dispose();
    const [T, I] = scores.shape;
    return selectFromScores(data, T, I, { threshold: 0, ...this.opts });
  }

  dispose(): void {
    tf.dispose([...this.gate, ...this.up]);
  }
}

/**
 * One layer of the low-rank predictor: z = P x (rank r), predicted gate = Cg z, up = Cu z; the
 * score of neuron i is |silu(gate_i) · up_i|.
 */
export interface LowRankLayer {
  /** [r, H] */
  project: Float32Array;
  /** [I, r] */
  gate: Float32Array;
  /** [I, r] */
  up: Float32Array;
}

export const PREDICTOR_FORMAT = 'edkm-flash-predictor';

/** The learned predictor: a rank-r factorisation per layer, see `fitLowRankPredictor`. */
export class LowRankPredictor implements NeuronPredictor {
  readonly name: string;
  readonly rank: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  private readonly tensors: { project: tf.Tensor2D; gate: tf.Tensor2D; up: tf.Tensor2D }[];

  constructor(
    readonly layers: LowRankLayer[],
    hiddenSize: number,
    readonly opts: SelectOptions = {},
  ) {
    if (layers.length === 0) throw new InvalidArgumentError('a predictor needs at least one layer');
    this.hiddenSize = hiddenSize;
    this.rank = layers[0].project.length / hiddenSize;
    this.intermediateSize = layers[0].gate.length / this.rank;
    const r = this.rank;
    const I = this.intermediateSize;
    layers.forEach((l, i) => {
      if (
        !Number.isInteger(r) ||
        !Number.isInteger(I) ||
        l.project.length !== r * hiddenSize ||
        l.gate.length !== I * r ||
        l.up.length !== I * r
      )
        throw new FormatError(`predictor layer ${i} has inconsistent sizes`);
    });
    this.tensors = layers.map((l) => ({
      project: tf.tensor2d(l.project, [r, hiddenSize]),
      gate: tf.tensor2d(l.gate, [I, r]),
      up: tf.tensor2d(l.up, [I, r]),
    }));
    this.name = `low-rank r=${r}${opts.topK !== undefined ? ` top-${opts.topK}` : ''}`;
  }

  /** The same weights with other selection settings. */
  withSelection(opts: SelectOptions): LowRankPredictor {
    return new LowRankPredictor(this.layers, this.hiddenSize, opts);
  }

  /** Bytes of the weights in memory (float32): r·(H + 2I) per layer. */
  get bytes(): number {
    return 4 * this.layers.length * this.rank * (this.hiddenSize + 2 * this.intermediateSize);
  }

  /** Predicted |silu(gate) · up| [T, I]. */
  scores(layer: number, x: tf.Tensor2D): tf.Tensor2D {
    const w = this.tensors[layer];
    return tf.tidy(() => {
      const z = tf.matMul(x, w.project, false, true);
      return swigluMagnitude(tf.matMul(z, w.gate, false, true), tf.matMul(z, w.up, false, true));
    });
  }

  async select(layer: number, x: tf.Tensor2D): Promise<NeuronSelection> {
    const s = this.scores(layer, x);
    const data = (await s.data()) as Float32Array;
    s.dispose();
    return selectFromScores(data, s.shape[0], s.shape[1], this.opts);
  }

  /** Writes the predictor as safetensors (F32 `layers.<l>.{project,gate,up}`). */
  save(path: string, metadata: Record<string, string> = {}): void {
    const r = this.rank;
    const I = this.intermediateSize;
    const tensors: Parameters<typeof writeSafetensors>[1] = {};
    this.layers.forEach((l, i) => {
      tensors[`layers.${i}.project`] = {
        dtype: 'F32',
        shape: [r, this.hiddenSize],
        data: l.project,
      };
      tensors[`layers.${i}.gate`] = { dtype: 'F32', shape: [I, r], data: l.gate };
      tensors[`layers.${i}.up`] = { dtype: 'F32', shape: [I, r], data: l.up };
    });
    writeSafetensors(path, tensors, {
      ...metadata,
      format: PREDICTOR_FORMAT,
      layers: String(this.layers.length),
      rank: String(r),
    });
  }

  /** Reads a saved predictor; `expect` checks it against the model it is used with. */
  static load(
    path: string,
    opts: SelectOptions = {},
    expect?: { layers: number; hiddenSize: number; intermediateSize: number },
  ): LowRankPredictor {
    const st = new SafetensorsFile(path);
    try {
      if (st.metadata.format !== PREDICTOR_FORMAT)
        throw new FormatError(
          `${path} is not a flash predictor (format ${JSON.stringify(st.metadata.format)})`,
        );
      const count = Number(st.metadata.layers);
      if (!Number.isInteger(count) || count < 1) throw new FormatError(`${path}: bad layer count`);
      const layers: LowRankLayer[] = [];
      let hidden = 0;
      for (let i = 0; i < count; i++) {
        const part = (name: string) => {
          const e = st.tensors.get(`layers.${i}.${name}`);
          if (!e || e.dtype !== 'F32' || e.shape.length !== 2)
            throw new FormatError(`${path}: 'layers.${i}.${name}' is missing or not a F32 matrix`);
          if (name === 'project') hidden = e.shape[1];
          const b = st.read(e.name);
          return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
        };
        layers.push({ project: part('project'), gate: part('gate'), up: part('up') });
      }
      const p = new LowRankPredictor(layers, hidden, opts);
      if (
        expect &&
        (count !== expect.layers ||
          hidden !== expect.hiddenSize ||
          p.intermediateSize !== expect.intermediateSize)
      ) {
        p.dispose();
        throw new FormatError(
          `${path}: predictor for ${count} layers × [${hidden} → ${p.intermediateSize}] does not fit a model of ${expect.layers} layers × [${expect.hiddenSize} → ${expect.intermediateSize}]`,
        );
      }
      return p;
    } finally {
      st.close();
    }
  }

  dispose(): void {
    for (const t of this.tensors) tf.dispose([t.project, t.gate, t.up]);
  }
}
