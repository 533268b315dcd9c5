import {
  InvalidArgumentError,
  NormKernelNames,
  ShapeError,
  hasKernel,
  rmsNormFused,
  tf,
} from '@edkm/core';
import type { LlamaConfig } from './config';

/** Per-layer keys and values of the positions seen so far (generation). */
export interface KVCache {
  keys: tf.Tensor4D[];
  values: tf.Tensor4D[];
  length: number;
}

/** Layer l's keys and values in `cache` so far (undefined without a cache or before its first step). */
export function layerPast(
  cache: KVCache | undefined,
  l: number,
): { k: tf.Tensor4D; v: tf.Tensor4D } | undefined {
  return cache?.keys[l] ? { k: cache.keys[l], v: cache.values[l] } : undefined;
}

/**
 * The KV-cache side of one cached forward: each layer's full keys and values (past + new) are kept
 * as the layers produce them, then committed to the cache (its old tensors released) or, if the
 * forward fails, discarded. Without a cache it does nothing.
 */
export class KvCacheStep {
  private readonly keys: tf.Tensor4D[] = [];
  private readonly values: tf.Tensor4D[] = [];
  constructor(private readonly cache: KVCache | undefined) {}

  /** Layer l's keys and values so far. */
  past(l: number): { k: tf.Tensor4D; v: tf.Tensor4D } | undefined {
    return layerPast(this.cache, l);
  }

  /** Keeps the next layer's keys and values (tf.keep: they outlive the tidy that made them). */
  keep(layer: { k: tf.Tensor4D; v: tf.Tensor4D }): void {
    if (!this.cache) return;
    this.keys.push(tf.keep(layer.k));
    this.values.push(tf.keep(layer.v));
  }

  /** Replaces the cache's keys and values with the kept ones; `length` positions are cached now. */
  commit(length: number): void {
    const cache = this.cache;
    if (!cache) return;
    tf.dispose([...cache.keys, ...cache.values]);
    cache.keys = this.keys;
    cache.values = this.values;
    cache.length = length;
  }

  /** Releases what was kept (a forward that failed before commit). */
  discard(): void {
    tf.dispose([...this.keys, ...this.values]);
  }
}

export interface ForwardOptions {
  /** Past keys/values; the new positions start at cache.length. The cache is updated in place. */
  cache?: KVCache;
  /** [B, T] 1 = real token, 0 = padding (right-padded batches). */
  attentionMask?: number[][];
  /** [B, T] segment of each position in packed sequences: attention stays inside a segment. */
  segmentIds?: number[][];
  /** [B, T] RoPE positions (default 0..T-1 after the cache; packed sequences restart them). */
  positionIds?: number[][];
  /**
   * The same as device tensors, in place of the arrays: the additive mask attentionBias() builds
   * ([B|1, 1, T, past + T]) and the positions (int32 [B, T]). A step recorded with captureGraph
   * then replays on another batch by rewriting them.
   */
  maskTensor?: tf.Tensor4D;
  positionTensor?: tf.Tensor2D;
}

export type WeightTransform = (name: string, weight: tf.Tensor2D) => tf.Tensor2D;
/** Computes x · Wᵀ for the named linear weight [out, in] (e.g. a palettizer's fused linear). */
export type LinearFunction = (name: string, x: tf.Tensor2D, weight: tf.Tensor2D) => tf.Tensor2D;

const NEG = -1e9;

/**
 * RMSNorm over the last axis: x / √(mean(x²) + eps) · weight — one fused kernel forward and one
 * backward (core's rmsNormFused) where the backend has them, else the composed ops.
 */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor, eps: number): tf.Tensor {
  if (hasKernel(NormKernelNames.RmsNorm) && hasKernel(NormKernelNames.RmsNormGrad))
    return rmsNormFused(x, weight, eps);
  return rmsNormComposed(x, weight, eps);
}

/** RMSNorm from tfjs ops (the reference the fused kernels are tested against). */
export function rmsNormComposed(x: tf.Tensor, weight: tf.Tensor, eps: number): tf.Tensor {
  const variance = x.square().mean(-1, true);
  return x.mul(tf.rsqrt(variance.add(eps))).mul(weight);
}

/**
 * Rotary inverse frequencies 1 / θ^(2i/D), i < D/2, scaled as the config says: 'linear' divides
 * them by the factor; 'llama3' (transformers' _compute_llama3_parameters) divides the
 * low-frequency ones (wavelength above original_max / low_freq_factor) by the factor, keeps the
 * high-frequency ones (wavelength below original_max / high_freq_factor) and interpolates between.
 */
export function ropeInverseFrequencies(config: LlamaConfig): Float32Array {
  const s = config.ropeScaling;
  return Float32Array.from({ length: config.headDim / 2 }, (_, i) => {
    const f = 1 / config.ropeTheta ** ((2 * i) / config.headDim);
    if (s.type === 'linear') return f / s.factor;
    if (s.type !== 'llama3') return f;
    const wavelength = (2 * Math.PI) / f;
    const lowWavelength = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highWavelength = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    if (wavelength < highWavelength) return f;
    if (wavelength > lowWavelength) return f / s.factor;
    const smooth =
      (s.originalMaxPositionEmbeddings / wavelength - s.lowFreqFactor) /
      (s.highFreqFactor - s.lowFreqFactor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

/** cos/sin [B, 1, T, D] of the rotary embedding at positions [B, T]. */
export function ropeTables(positions: tf.Tensor2D, invFreq: Float32Array): [tf.Tensor, tf.Tensor] {
  const freqs = positions
    .toFloat()
    .expandDims(2)
    .mul(tf.tensor1d(invFreq).reshape([1, 1, -1]));
  const emb = tf.concat([freqs, freqs], 2).expandDims(1);
  return [tf.cos(emb), tf.sin(emb)];
}

/** The [D, D] signed permutation R with x·R = rotate_half(x) = [−x2, x1]. */
export function rotateHalfMatrix(D: number): tf.Tensor2D {
  const r = new Float32Array(D * D);
  for (let i = 0; i < D / 2; i++) {
    r[(i + D / 2) * D + i] = -1; // out[i] = −x[i + D/2]
    r[i * D + i + D / 2] = 1; // out[i + D/2] = x[i]
  }
  return tf.tensor2d(r, [D, D]);
}

/**
 * x·cos + rotate_half(x)·sin (Hugging Face's rotate-half convention), rotate_half written as a
 * product with a fixed signed permutation: one small matmul, no strided slices and concat.
 */
export function applyRope(
  x: tf.Tensor,
  cos: tf.Tensor,
  sin: tf.Tensor,
  rotateHalf: tf.Tensor2D,
): tf.Tensor {
  const D = rotateHalf.shape[0];
  const rotated = tf.matMul(x.reshape([-1, D]) as tf.Tensor2D, rotateHalf).reshape(x.shape);
  return x.mul(cos).add(rotated.mul(sin));
}

export interface AttentionContext {
  config: LlamaConfig;
  B: number;
  T: number;
  cos: tf.Tensor;
  sin: tf.Tensor;
  /** Additive mask [B|1, 1, T, past + T]. */
  mask: tf.Tensor;
  rotateHalf: tf.Tensor2D;
  /** This layer's cached keys and values [B, KV, past, D]. */
  past?: { k: tf.Tensor4D; v: tf.Tensor4D };
}

/**
 * One decoder layer's grouped-query self-attention on normalised hidden states h [B·T, hidden]:
 * `project(a, 'q' | 'k' | 'v' | 'o')` applies that projection. Returns the o-projection's output
 * [B·T, hidden] and the keys and values of every position so far (the cache's and these).
 */
export function selfAttention(
  h: tf.Tensor2D,
  project: (a: tf.Tensor2D, which: 'q' | 'k' | 'v' | 'o') => tf.Tensor2D,
  ctx: AttentionContext,
): { out: tf.Tensor2D; k: tf.Tensor4D; v: tf.Tensor4D } {
  const { config: c, B, T, cos, sin, mask, rotateHalf, past } = ctx;
  const H = c.numAttentionHeads;
  const KV = c.numKeyValueHeads;
  const D = c.headDim;
  const heads = (t: tf.Tensor, n: number) => t.reshape([B, T, n, D]).transpose([0, 2, 1, 3]);
  const q = applyRope(heads(project(h, 'q'), H), cos, sin, rotateHalf);
  let k = applyRope(heads(project(h, 'k'), KV), cos, sin, rotateHalf) as tf.Tensor4D;
  let v = heads(project(h, 'v'), KV) as tf.Tensor4D;
  if (past) {
    k = tf.concat([past.k, k], 2);
    v = tf.concat([past.v, v], 2);
  }
  // grouped-query attention: query head h reads KV head floor(h / rep) (Hugging Face's
  // repeat_kv). Heads are KV-major, so the rep query heads of one KV head are one [rep·T, D]
  // block: one batched matmul per KV head, no copy of the keys and values.
  const rep = H / KV;
  const Tk = k.shape[2] as number;
  const scores = tf
    .matMul(q.reshape([B, KV, rep * T, D]) as tf.Tensor4D, k, false, true)
    .reshape([B, H, T, Tk])
    .mul(1 / Math.sqrt(D))
    .add(mask);
  const attn = tf
    .matMul(tf.softmax(scores).reshape([B, KV, rep * T, Tk]) as tf.Tensor4D, v)
    .reshape([B, H, T, D]);
  const merged = attn.transpose([0, 2, 1, 3]).reshape([B * T, H * D]) as tf.Tensor2D;
  return { out: project(merged, 'o'), k, v };
}

/** One decoder layer's weights: its two norms and its seven projections. */
export interface DecoderLayerWeights {
  inputNorm: tf.Tensor;
  postNorm: tf.Tensor;
  /** Applies that projection to a [rows, in] matrix (x · Wᵀ). */
  project: (a: tf.Tensor2D, which: 'q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down') => tf.Tensor2D;
}

/**
 * One LLaMA decoder layer on hidden states x [B, T, hidden]: pre-norm self-attention and SwiGLU
 * MLP, each with its residual. Returns the new hidden states and this layer's keys and values.
 */
export function decoderLayer(
  x: tf.Tensor,
  w: DecoderLayerWeights,
  ctx: AttentionContext,
): { x: tf.Tensor; k: tf.Tensor4D; v: tf.Tensor4D } {
  const { config: c, B, T } = ctx;
  const rows = (t: tf.Tensor) => t.reshape([B * T, c.hiddenSize]) as tf.Tensor2D;
  const h = rows(rmsNorm(x, w.inputNorm, c.rmsNormEps));
  const attention = selfAttention(h, (a, which) => w.project(a, which), ctx);
  const mid = x.add(attention.out.reshape([B, T, c.hiddenSize]));
  const m = rows(rmsNorm(mid, w.postNorm, c.rmsNormEps));
  const gate = w.project(m, 'gate');
  const up = w.project(m, 'up');
  const down = w.project(tf.mul(tf.mul(gate, tf.sigmoid(gate)), up) as tf.Tensor2D, 'down');
  return { x: mid.add(down.reshape([B, T, c.hiddenSize])), k: attention.k, v: attention.v };
}

/**
 * A LLaMA-architecture causal LM in tfjs, in one file (llama2.c style). Weights are tf.Variables
 * keyed by their Hugging Face names; linear weights keep the HF layout [out_features, in_features].
 */
export class LlamaModel {
  readonly config: LlamaConfig;
  private readonly weights = new Map<string, tf.Variable>();
  private transform: WeightTransform | null = null;
  private linearFn: LinearFunction | null = null;
  private readonly invFreq: Float32Array;
  /** [D, D] signed permutation R with x·R = rotate_half(x). */
  private readonly rotateHalf: tf.Tensor2D;

  /**
   * `tensors`: the weights by Hugging Face name (copied; the caller keeps them), or a function
   * that makes each one on demand (the model takes it over: a loader that streams a checkpoint).
   */
  constructor(
    config: LlamaConfig,
    tensors: Map<string, tf.Tensor> | ((name: string) => tf.Tensor),
  ) {
    this.config = config;
    try {
      for (const name of this.expectedWeightNames()) {
        const t = typeof tensors === 'function' ? tensors(name) : tensors.get(name);
        if (!t) throw new ShapeError(`missing weight '${name}'`);
        // tf.variable shares the data of its initial value: release the cast's handle after it
        const initial = t.toFloat();
        this.weights.set(name, tf.variable(initial, true));
        initial.dispose();
        if (typeof tensors === 'function') t.dispose();
      }
    } catch (err) {
      for (const w of this.weights.values()) w.dispose();
      throw err;
    }
    this.rotateHalf = rotateHalfMatrix(config.headDim);
    this.invFreq = ropeInverseFrequencies(config);
  }

  private expectedWeightNames(): string[] {
    const names = ['model.embed_tokens.weight', 'model.norm.weight'];
    if (!this.config.tieWordEmbeddings) names.push('lm_head.weight');
    for (let l = 0; l < this.config.numHiddenLayers; l++) {
      const p = `model.layers.${l}.`;
      names.push(`${p}input_layernorm.weight`, `${p}post_attention_layernorm.weight`);
      for (const m of ['q_proj', 'k_proj', 'v_proj', 'o_proj'])
        names.push(`${p}self_attn.${m}.weight`);
      for (const m of ['gate_proj', 'up_proj', 'down_proj']) names.push(`${p}mlp.${m}.weight`);
    }
    return names;
  }

  /** Names of every linear weight (the projections, and lm_head unless tied). */
  linearWeightNames(): string[] {
    return this.expectedWeightNames().filter(
      (n) => n.endsWith('_proj.weight') || n === 'lm_head.weight',
    );
  }

  getWeights(): Map<string, tf.Variable> {
    return this.weights;
  }

  get trainableVariables(): tf.Variable[] {
    return [...this.weights.values()];
  }

  setWeight(name: string, value: tf.Tensor): void {
    const w = this.weights.get(name);
    if (!w) throw new InvalidArgumentError(`no weight named '${name}'`);
    if (!tf.util.arraysEqual(w.shape, value.shape))
      throw new ShapeError(`'${name}' is [${w.shape}], got [${value.shape}]`);
    const cast = value.toFloat();
    w.assign(cast);
    cast.dispose();
  }

  /** Every linear weight passes through `fn` inside the forward pass (e.g. DKM's soft clustering). */
  setWeightTransform(fn: WeightTransform | null): void {
    this.transform = fn;
  }

  /**
   * Every linear layer (not the tied LM head) is computed by `fn` instead of x · Wᵀ: for layers
   * that never materialise their effective weight for the backward pass (DKM's fused linear).
   * Takes precedence over setWeightTransform.
   */
  setLinear(fn: LinearFunction | null): void {
    this.linearFn = fn;
  }

  private w(name: string): tf.Tensor {
    return this.weights.get(name)!;
  }

  private linear(x: tf.Tensor2D, name: string): tf.Tensor2D {
    let weight = this.weights.get(name) as unknown as tf.Tensor2D;
    if (this.linearFn) return this.linearFn(name, x, weight);
    if (this.transform) weight = this.transform(name, weight);
    return tf.matMul(x, weight, false, true);
  }

  private rmsNorm(x: tf.Tensor, name: string): tf.Tensor {
    return rmsNorm(x, this.w(name), this.config.rmsNormEps);
  }

  /** Token embeddings [B, T, hidden] of int32 ids [B, T]. */
  embed(ids: tf.Tensor2D): tf.Tensor3D {
    const [B, T] = ids.shape;
    return tf
      .gather(this.w('model.embed_tokens.weight'), ids.reshape([-1]))
      .reshape([B, T, this.config.hiddenSize]);
  }

  /**
   * Decoder layer l on hidden states x [B, T, hidden] (decoderLayer with this model's weights and
   * linear hooks). With a cache, the layer's past keys and values are read from it (the caller
   * stores the returned k, v).
   */
  decoderLayerAt(
    l: number,
    x: tf.Tensor,
    ctx: { B: number; T: number; cos: tf.Tensor; sin: tf.Tensor; mask: tf.Tensor },
    cache?: KVCache,
  ): { x: tf.Tensor; k: tf.Tensor4D; v: tf.Tensor4D } {
    const p = `model.layers.${l}.`;
    return decoderLayer(
      x,
      {
        inputNorm: this.w(`${p}input_layernorm.weight`),
        postNorm: this.w(`${p}post_attention_layernorm.weight`),
        project: (a, which) =>
          this.linear(
            a,
            which === 'gate' || which === 'up' || which === 'down'
              ? `${p}mlp.${which}_proj.weight`
              : `${p}self_attn.${which}_proj.weight`,
          ),
      },
      {
        config: this.config,
        ...ctx,
        rotateHalf: this.rotateHalf,
        past: layerPast(cache, l),
      },
    );
  }

  /** Logits [B·T, vocab] of the last hidden states x [B, T, hidden] (final norm, LM head). */
  head(x: tf.Tensor): tf.Tensor2D {
    const c = this.config;
    const final = this.rmsNorm(x, 'model.norm.weight').reshape([-1, c.hiddenSize]) as tf.Tensor2D;
    return c.tieWordEmbeddings
      ? tf.matMul(final, this.w('model.embed_tokens.weight') as tf.Tensor2D, false, true)
      : this.linear(final, 'lm_head.weight');
  }

  /** RoPE tables and the additive mask of a [B, T] batch without a cache (for layer-wise use). */
  layerContext(
    B: number,
    T: number,
    opts: Omit<ForwardOptions, 'cache'> = {},
  ): { B: number; T: number; cos: tf.Tensor; sin: tf.Tensor; mask: tf.Tensor } {
    const [cos, sin, mask] = tf.tidy(() => {
      const positions = opts.positionIds
        ? tf.tensor2d(opts.positionIds, [B, T], 'int32')
        : tf.range(0, T, 1, 'int32').expandDims(0).tile([B, 1]);
      return [...ropeTables(positions as tf.Tensor2D, this.invFreq), this.mask(B, T, 0, opts)];
    });
    return { B, T, cos, sin, mask };
  }

  /**
   * Logits [B, T, vocab] for token ids [B, T] (int32 tensor or arrays). Causal; with a cache the
   * positions continue from it and the cache grows.
   */
  forward(ids: tf.Tensor2D | number[][], opts: ForwardOptions = {}): tf.Tensor3D {
    const c = this.config;
    const input = Array.isArray(ids) ? tf.tensor2d(ids, undefined, 'int32') : ids;
    const [B, T] = input.shape;
    const past = opts.cache?.length ?? 0;
    if (past + T > c.maxPositionEmbeddings) {
      throw new InvalidArgumentError(
        `${past + T} positions exceed max_position_embeddings ${c.maxPositionEmbeddings}`,
      );
    }
    const { cache } = opts;
    const kv = new KvCacheStep(cache);
    const logits = tf.tidy(() => {
      const positions =
        opts.positionTensor ??
        (opts.positionIds
          ? tf.tensor2d(opts.positionIds, [B, T], 'int32')
          : tf
              .range(past, past + T, 1, 'int32')
              .expandDims(0)
              .tile([B, 1]));
      const [cos, sin] = ropeTables(positions as tf.Tensor2D, this.invFreq);
      const mask = opts.maskTensor ?? this.mask(B, T, past, opts);
      let x: tf.Tensor = this.embed(input);
      for (let l = 0; l < c.numHiddenLayers; l++) {
        const layer = this.decoderLayerAt(l, x, { B, T, cos, sin, mask }, cache);
        kv.keep(layer);
        x = layer.x;
      }
      const out = this.head(x);
      return out.reshape([B, T, c.vocabSize]) as tf.Tensor3D;
    });
    kv.commit(past + T);
    if (Array.isArray(ids)) input.dispose();
    return logits;
  }

  /** The evaluator's entry: logits [B, T, V] of int32 ids [B, T]. */
  logits(ids: tf.Tensor2D): tf.Tensor3D {
    return this.forward(ids);
  }

  /** Additive attention mask [B|1, 1, T, past + T]: causal, padding, segments. */
  private mask(B: number, T: number, past: number, opts: ForwardOptions): tf.Tensor {
    const { values, shape } = this.attentionBias(B, T, past, opts);
    return tf.tensor4d(values, shape);
  }

  /**
   * The additive attention mask's values and shape [B|1, 1, T, past + T] (0 where a position may
   * attend, a large negative number where not): causal, padding (attentionMask), segments.
   */
  attentionBias(
    B: number,
    T: number,
    past: number,
    opts: Pick<ForwardOptions, 'attentionMask' | 'segmentIds'>,
  ): { values: Float32Array; shape: [number, number, number, number] } {
    const Tk = past + T;
    const needsBatch = Boolean(opts.attentionMask || opts.segmentIds);
    const rows = needsBatch ? B : 1;
    const m = new Float32Array(rows * T * Tk);
    for (let b = 0; b < rows; b++) {
      for (let i = 0; i < T; i++) {
        for (let j = 0; j < Tk; j++) {
          let ok = j <= past + i;
          if (ok && opts.attentionMask && j >= past) ok = opts.attentionMask[b][j - past] === 1;
          if (ok && opts.segmentIds && j >= past)
            ok = opts.segmentIds[b][j - past] === opts.segmentIds[b][i];
          m[(b * T + i) * Tk + j] = ok ? 0 : NEG;
        }
      }
    }
    return { values: m, shape: [rows, 1, T, Tk] };
  }

  /**
   * Mean cross-entropy of next-token prediction, labels aligned with the inputs (Hugging Face
   * convention: the shift happens here); label −100 is ignored.
   */
  loss(
    inputIds: number[][],
    labels: number[][],
    opts: Omit<ForwardOptions, 'cache'> = {},
  ): tf.Scalar {
    const targets = this.lossTargets(inputIds, labels);
    return tf.tidy(() => {
      const [B, T] = [inputIds.length, inputIds[0].length];
      return this.crossEntropy(
        this.forward(inputIds, opts).reshape([B * T, this.config.vocabSize]) as tf.Tensor2D,
        targets,
      );
    });
  }

  /**
   * The next-token targets of labels aligned with inputs (position t predicts labels[t + 1]; the
   * last position of a row and label −100 weigh 0), validated: for loss() and layer-wise training.
   */
  lossTargets(
    inputIds: number[][],
    labels: number[][],
  ): { targets: Int32Array; weights: Float32Array; count: number } {
    const B = inputIds.length;
    const T = inputIds[0]?.length ?? 0;
    if (
      T < 2 ||
      labels.length !== B ||
      labels.some((r, b) => r.length !== T || inputIds[b].length !== T)
    ) {
      throw new ShapeError(
        'loss: inputIds and labels must be equal-length rows of at least 2 tokens',
      );
    }
    const V = this.config.vocabSize;
    // the last position of a row predicts nothing (weight 0), so the logits need no slice
    const targets = new Int32Array(B * T);
    const weights = new Float32Array(B * T);
    let count = 0;
    labels.forEach((row, b) => {
      for (let t = 1; t < T; t++) {
        const y = row[t];
        if (y === -100) continue;
        if (!Number.isInteger(y) || y < 0 || y >= V)
          throw new InvalidArgumentError(`label ${y} is outside the vocabulary`);
        targets[b * T + t - 1] = y;
        weights[b * T + t - 1] = 1;
        count++;
      }
    });
    if (count === 0) throw new InvalidArgumentError('loss: every label is -100');
    return { targets, weights, count };
  }

  /** Mean weighted cross-entropy of logits [N, vocab] against lossTargets(). */
  crossEntropy(
    logits: tf.Tensor2D,
    t: { targets: Int32Array; weights: Float32Array; count: number },
  ): tf.Scalar {
    return tf.tidy(() =>
      this.weightedCrossEntropy(
        logits,
        tf.tensor1d(t.targets, 'int32'),
        tf.tensor1d(t.weights.map((w) => w / t.count)),
      ),
    );
  }

  /** −Σ weights[i] · log softmax(logits[i])[targets[i]] (targets int32 [N], weights f32 [N]). */
  private weightedCrossEntropy(
    logits: tf.Tensor2D,
    targets: tf.Tensor1D,
    weights: tf.Tensor1D,
  ): tf.Scalar {
    return tf.tidy(() => {
      const logp = tf.logSoftmax(logits);
      const picked = tf.sum(tf.mul(logp, tf.oneHot(targets, this.config.vocabSize)), 1);
      return tf.neg(tf.sum(tf.mul(picked, weights))) as tf.Scalar;
    });
  }

  /**
   * loss() with every per-batch input already a tensor: ids [B, T] int32, and lossTargets()'s
   * targets [B·T] int32 and weights [B·T] float32 divided by its count (they sum to 1). Nothing
   * of the batch is baked into the work, so a step recorded with captureGraph can be replayed on
   * the next batch by rewriting these tensors. `extra`: padding/segment masks and positions as
   * device tensors (attentionBias() gives the mask's values); without them, a causal mask.
   */
  lossFromTensors(
    ids: tf.Tensor2D,
    targets: tf.Tensor1D,
    weights: tf.Tensor1D,
    extra: Pick<ForwardOptions, 'maskTensor' | 'positionTensor'> = {},
  ): tf.Scalar {
    const [B, T] = ids.shape;
    if (ids.dtype !== 'int32' || targets.dtype !== 'int32' || weights.dtype !== 'float32')
      throw new ShapeError('lossFromTensors: ids and targets must be int32, weights float32');
    if (targets.size !== B * T || weights.size !== B * T)
      throw new ShapeError(
        `lossFromTensors: targets [${targets.shape}] and weights [${weights.shape}] must hold B·T = ${B * T} values`,
      );
    return tf.tidy(() =>
      this.weightedCrossEntropy(
        this.forward(ids, extra).reshape([B * T, this.config.vocabSize]) as tf.Tensor2D,
        targets,
        weights,
      ),
    );
  }

  /** Releases the weights. */
  dispose(): void {
    for (const w of this.weights.values()) w.dispose();
    this.weights.clear();
    this.rotateHalf.dispose();
  }
}
