import { join } from 'node:path';
import {
  type DecodeAttrs,
  type DeviceGraph,
  type HostWeight,
  InvalidArgumentError,
  type LinearFusionInputs,
  type PackedWeight,
  ShapeError,
  bf16GatherRows,
  captureGraph,
  disposePackedWeight,
  flushBackend,
  fromHalfBits,
  hostWeightShape,
  kvWriteAttention,
  packedMatMul,
  packedMatMulW8A8,
  rmsNormRows,
  ropeTable,
  seededRandom,
  stackHostWeights,
  tf,
  uploadHostWeight,
} from '@edkm/core';
import type { LlamaConfig } from './config';
import { FormatError } from './errors';
import type { GenerateOptions } from './generate';
import { ropeInverseFrequencies } from './model';
import { SafetensorsFile } from './safetensors';

/** Where a Decoder gets its weights: linear ones (and the embedding) in their stored form. */
export interface DecoderSource {
  /** A weight [out, in] (or the embedding [vocab, hidden]) by Hugging Face name. */
  matrix(name: string): HostWeight;
  /** A vector (the RMSNorm weights) as float32. */
  vector(name: string): Float32Array;
}

/** The weights of a plain Hugging Face folder: BF16 kept as bf16 bits, F16/F32 as float32. */
export function safetensorsSource(dir: string): DecoderSource & { close(): void } {
  const st = new SafetensorsFile(join(dir, 'model.safetensors'));
  if (st.metadata.format === 'edkm-palettized') {
    st.close();
    throw new FormatError(
      `${dir} holds a palettized export: use palettizedSource() from @edkm/palettized`,
    );
  }
  const read = (name: string) => {
    const entry = st.tensors.get(name);
    if (!entry) throw new FormatError(`${st.path}: no tensor '${name}'`);
    const bytes = st.read(name).slice();
    return { entry, bytes };
  };
  return {
    matrix(name) {
      const { entry, bytes } = read(name);
      if (entry.shape.length !== 2)
        throw new ShapeError(`${name} is [${entry.shape}], expected a matrix`);
      const shape = entry.shape as [number, number];
      if (entry.dtype === 'BF16')
        return { format: 'bf16', shape, bits: new Uint16Array(bytes.buffer, 0, bytes.length / 2) };
      return { format: 'f32', shape, data: vectorOf(entry.dtype, bytes, st.path, name) };
    },
    vector(name) {
      const { entry, bytes } = read(name);
      return vectorOf(entry.dtype, bytes, st.path, name);
    },
    close: () => st.close(),
  };
}

function vectorOf(dtype: string, bytes: Uint8Array, path: string, name: string): Float32Array {
  if (dtype === 'F32') return new Float32Array(bytes.buffer, 0, bytes.length / 4);
  if (dtype === 'BF16' || dtype === 'F16')
    return fromHalfBits(
      new Uint16Array(bytes.buffer, 0, bytes.length / 2),
      dtype === 'BF16' ? 'bf16' : 'fp16',
    );
  throw new FormatError(`${path}: '${name}' has dtype ${dtype}; expected F32, F16 or BF16`);
}

/** One linear step of the decoder: one kernel call when its weights stack, else one per part. */
interface Linear {
  parts: PackedWeight[];
  out: number;
}

interface Layer {
  inputNorm: tf.Tensor1D;
  postNorm: tf.Tensor1D;
  qkv: Linear;
  o: Linear;
  gateUp: Linear;
  down: Linear;
  cache: tf.Tensor;
}

export interface DecoderOptions {
  /** Sequences decoded side by side (default 1). */
  batch?: number;
  /** Positions the KV cache holds (prompt + new tokens; default the config's maximum). */
  maxLength?: number;
  /**
   * How products of many rows (prefill, scoring) run: 'exact' (float32, the default) or 'w8a8'
   * (palettized weights on int8 tensor cores, activations quantized per token: core's
   * packedMatMulW8A8). Decoding steps (fewer than `w8a8MinRows` rows) stay exact.
   */
  prefill?: 'exact' | 'w8a8';
  /** The fewest rows a product takes W8A8 with (default 64). */
  w8a8MinRows?: number;
}

export interface DecoderMemory {
  /** Bytes of the weights on the device, as stored (palettized, bf16 or f32). */
  weights: number;
  /** Of which the embedding table (one row of it is read per token). */
  embedding: number;
  /** Bytes of the KV caches (allocated once for maxLength). */
  cache: number;
}

/**
 * KV-cached LLaMA decoding with no per-token allocation of new shapes: the weights stay in their
 * stored form on the device (LUTs + packed indices, or bf16), read by the PaletteMatMul /
 * Bf16MatMul kernels; each layer's KV cache is one [2, B, KV, L, D] tensor allocated once and
 * written in place; the position is a kernel attribute. q/k/v and gate/up run as one stacked
 * weight each. Sampling runs on the device; one small read-back (the new tokens) per step,
 * overlapped with the next step's work.
 */
export class Decoder {
  readonly config: LlamaConfig;
  readonly batch: number;
  readonly maxLength: number;
  private readonly layers: Layer[] = [];
  private readonly embed: PackedWeight;
  private readonly head: Linear;
  private readonly finalNorm: tf.Tensor1D;
  private readonly rope: tf.Tensor2D;
  private starts: tf.Tensor1D;
  private pos = 0;
  private readonly weightBytes: number;
  private readonly w8a8MinRows: number;
  private prefillMode: 'exact' | 'w8a8';

  constructor(config: LlamaConfig, source: DecoderSource, opts: DecoderOptions = {}) {
    this.config = config;
    this.batch = opts.batch ?? 1;
    this.maxLength = Math.min(
      opts.maxLength ?? config.maxPositionEmbeddings,
      config.maxPositionEmbeddings,
    );
    if (!Number.isInteger(this.batch) || this.batch < 1)
      throw new InvalidArgumentError(`batch must be a positive integer, got ${this.batch}`);
    if (!Number.isInteger(this.maxLength) || this.maxLength < 1)
      throw new InvalidArgumentError(`maxLength must be a positive integer, got ${this.maxLength}`);
    const prefill = opts.prefill ?? 'exact';
    if (prefill !== 'exact' && prefill !== 'w8a8')
      throw new InvalidArgumentError(`prefill must be 'exact' or 'w8a8', got '${prefill}'`);
    const minRows = opts.w8a8MinRows ?? 64;
    if (!Number.isInteger(minRows) || minRows < 1)
      throw new InvalidArgumentError(`w8a8MinRows must be a positive integer, got ${minRows}`);
    this.w8a8MinRows = minRows;
    this.prefillMode = prefill;
    const c = config;
    let bytes = 0;
    const linear = (names: string[]): Linear => {
      const hosts = names.map((n) => source.matrix(n));
      const stacked = stackHostWeights(hosts);
      const parts = (stacked ? [stacked] : hosts).map(uploadHostWeight);
      for (const p of parts) bytes += p.bytes;
      return { parts, out: hosts.reduce((a, h) => a + hostWeightShape(h)[0], 0) };
    };
    const vector = (name: string) => {
      bytes += c.hiddenSize * 4;
      return tf.tensor1d(source.vector(name));
    };
    const embedHost = source.matrix('model.embed_tokens.weight');
    this.embed =
      embedHost.format === 'palette'
        ? (() => {
            throw new FormatError(
              'a palettized embedding is not supported by the decoder: keep model.embed_tokens 16-bit',
            );
          })()
        : uploadHostWeight(embedHost);
    bytes += this.embed.bytes;
    const D = c.headDim;
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const p = `model.layers.${l}.`;
      this.layers.push({
        inputNorm: vector(`${p}input_layernorm.weight`),
        postNorm: vector(`${p}post_attention_layernorm.weight`),
        qkv: linear(['q_proj', 'k_proj', 'v_proj'].map((m) => `${p}self_attn.${m}.weight`)),
        o: linear([`${p}self_attn.o_proj.weight`]),
        gateUp: linear(['gate_proj', 'up_proj'].map((m) => `${p}mlp.${m}.weight`)),
        down: linear([`${p}mlp.down_proj.weight`]),
        cache: tf.zeros([2, this.batch, c.numKeyValueHeads, this.maxLength, D]),
      });
    }
    this.finalNorm = vector('model.norm.weight');
    this.head = c.tieWordEmbeddings
      ? { parts: [this.embed], out: c.vocabSize }
      : linear(['lm_head.weight']);
    this.rope = tf.tensor2d(ropeTable(this.maxLength, ropeInverseFrequencies(c)), [
      this.maxLength,
      D,
    ]);
    this.starts = tf.zeros([this.batch], 'int32');
    this.weightBytes = bytes;
  }

  /** How products of many rows run from now on (see DecoderOptions.prefill). */
  get prefill(): 'exact' | 'w8a8' {
    return this.prefillMode;
  }
  set prefill(mode: 'exact' | 'w8a8') {
    if (mode !== 'exact' && mode !== 'w8a8')
      throw new InvalidArgumentError(`prefill must be 'exact' or 'w8a8', got '${mode}'`);
    this.prefillMode = mode;
  }

  /** Device bytes of the weights and of the KV caches. */
  memory(): DecoderMemory {
    const c = this.config;
    return {
      weights: this.weightBytes,
      embedding: this.embed.bytes,
      cache:
        c.numHiddenLayers * 2 * this.batch * c.numKeyValueHeads * this.maxLength * c.headDim * 4,
    };
  }

  /** Positions used so far. */
  get position(): number {
    return this.pos;
  }

  /**
   * x · Wᵀ with the decode step's neighbours fused into the product's kernel (`fuse`: RMSNorm of
   * x before, the residual after): one dispatch instead of two or three.
   */
  private matmul(x: tf.Tensor2D, lin: Linear, fuse: LinearFusionInputs = {}): tf.Tensor2D {
    const product =
      this.prefillMode === 'w8a8' && x.shape[0] >= this.w8a8MinRows
        ? packedMatMulW8A8
        : packedMatMul;
    if (lin.parts.length === 1) return product(x, lin.parts[0], fuse);
    const { residual, ...prologue } = fuse;
    const y = tf.concat(
      lin.parts.map((w) => product(x, w, prologue)),
      1,
    );
    return residual ? y.add(residual) : y;
  }

  /** The RMSNorm prologue with one of the model's norm weights. */
  private norm(weight: tf.Tensor1D): LinearFusionInputs {
    return { rmsNorm: { weight, eps: this.config.rmsNormEps } };
  }

  /**
   * Runs T new positions per batch row (ids [B·T] int32, row-major) from the current position and
   * returns the logits of each row's last one [B, V]. The caches advance by T. With `position` (an
   * int32 [1] tensor holding the current position) the attention kernels read the position from
   * the device, so that the step can be recorded and replayed (generate's graph). With
   * `allPositions`, the logits of every new position instead [B·T, V].
   */
  forward(ids: tf.Tensor1D, t: number, position?: tf.Tensor1D, allPositions = false): tf.Tensor2D {
    const c = this.config;
    const B = this.batch;
    if (ids.shape[0] !== B * t) throw new ShapeError(`forward: ${ids.shape[0]} ids for ${B}×${t}`);
    if (this.pos + t > this.maxLength)
      throw new InvalidArgumentError(
        `${this.pos + t} positions exceed the decoder's maxLength ${this.maxLength}`,
      );
    const attrs: DecodeAttrs = {
      heads: c.numAttentionHeads,
      kvHeads: c.numKeyValueHeads,
      pos: this.pos,
    };
    const logits = tf.tidy(() => {
      let x: tf.Tensor2D =
        this.embed.format === 'bf16'
          ? bf16GatherRows(this.embed, ids)
          : (tf.gather((this.embed as { weight: tf.Tensor2D }).weight, ids) as tf.Tensor2D);
      // per layer: RMSNorm·QKV, KV write and attention (one kernel where the backend fuses them),
      // O + residual, RMSNorm·gate-up, SwiGLU·down + residual
      for (const layer of this.layers) {
        const qkv = this.matmul(x, layer.qkv, this.norm(layer.inputNorm));
        const attention = kvWriteAttention(
          layer.cache,
          qkv,
          this.rope,
          this.starts,
          attrs,
          position,
        );
        x = this.matmul(attention, layer.o, { residual: x });
        const gateUp = this.matmul(x, layer.gateUp, this.norm(layer.postNorm));
        // SwiGLU as the down product's prologue (computed in its kernel where it can: the GPU's GEMV)
        x = this.matmul(gateUp, layer.down, { swiglu: true, residual: x });
      }
      const last =
        t === 1 || allPositions
          ? x
          : (tf.gather(
              x,
              tf.tensor1d(
                Int32Array.from({ length: B }, (_, b) => b * t + t - 1),
                'int32',
              ),
            ) as tf.Tensor2D);
      // the head's norm stays its own kernel: fused, each of the vocabulary's rows would redo it
      return this.matmul(rmsNormRows(last, this.finalNorm, this.config.rmsNormEps), this.head);
    });
    this.pos += t;
    return logits;
  }

  /**
   * The logits of every position of each sequence [B', T, V] for ids [B', T] (any B'), each row
   * run from an empty cache as one prefill (B' / batch passes): for scoring (perplexity, the
   * eval tasks) through the inference kernels, e.g. with `prefill: 'w8a8'`.
   */
  logits(ids: tf.Tensor2D): tf.Tensor3D {
    const [rows, t] = ids.shape;
    const B = this.batch;
    if (ids.dtype !== 'int32') throw new InvalidArgumentError('logits: ids must be int32');
    if (t > this.maxLength)
      throw new InvalidArgumentError(`logits: ${t} positions exceed maxLength ${this.maxLength}`);
    const out: tf.Tensor2D[] = [];
    for (let r = 0; r < rows; r += B) {
      const take = Math.min(B, rows - r);
      const part = tf.tidy(() => {
        const slice = ids.slice([r, 0], [take, t]);
        // a last partial batch is padded with copies of its first row (their logits are dropped)
        const full =
          take < B
            ? tf.concat([slice, tf.tile(slice.slice([0, 0], [1, t]), [B - take, 1])])
            : slice;
        return full.reshape([B * t]) as tf.Tensor1D;
      });
      this.reset();
      const y = this.forward(part, t, undefined, true);
      part.dispose();
      out.push(take < B ? tf.tidy(() => y.slice([0, 0], [take * t, y.shape[1]])) : y);
      if (take < B) y.dispose();
    }
    this.reset();
    const all = tf.tidy(() =>
      (out.length === 1 ? out[0] : tf.concat(out)).reshape([rows, t, this.config.vocabSize]),
    ) as tf.Tensor3D;
    tf.dispose(out);
    return all;
  }

  /** Empties the caches (a new generation; the caches keep their memory). */
  reset(starts?: number[]): void {
    this.pos = 0;
    this.starts.dispose();
    this.starts = starts
      ? tf.tensor1d(Int32Array.from(starts), 'int32')
      : tf.zeros([this.batch], 'int32');
  }

  /**
   * Generates after each prompt (B prompts, left-padded to one length). Greedy by default; with a
   * temperature: top-k, top-p and the repetition penalty as `sampleToken` applies them, on the
   * device. `onToken(row, id)` streams every new token. Rows stop at an EOS id or maxNewTokens.
   */
  async generate(
    prompts: number[][],
    opts: GenerateOptions & { onRowToken?: (row: number, id: number) => void } = {},
  ): Promise<number[][]> {
    const B = this.batch;
    if (prompts.length !== B)
      throw new InvalidArgumentError(`generate: ${prompts.length} prompts for a batch of ${B}`);
    if (prompts.some((p) => p.length === 0))
      throw new InvalidArgumentError('generate: a prompt is empty');
    const T = Math.max(...prompts.map((p) => p.length));
    const maxNew = Math.min(opts.maxNewTokens ?? 64, this.maxLength - T);
    const eos = opts.eosIds ?? [this.config.eosTokenId ?? []].flat();
    const sampler = new DeviceSampler(this.config.vocabSize, B, opts);
    this.reset(prompts.map((p) => T - p.length));
    const ids = new Int32Array(B * T);
    prompts.forEach((p, b) => ids.set(p, b * T + T - p.length));
    for (const [b, p] of prompts.entries()) sampler.seen(b, p);
    const out: number[][] = prompts.map(() => []);
    const done = new Array<boolean>(B).fill(false);
    if (maxNew <= 0) {
      sampler.dispose();
      return out;
    }
    const idsT = tf.tensor1d(ids, 'int32');
    let logits = this.forward(idsT, T);
    idsT.dispose();
    let tokens = sampler.sample(logits);
    logits.dispose();
    let pending = tokens.data() as Promise<Int32Array>;
    // one-token steps after the first are replays of a recorded step (captureGraph) where the
    // backend records and the sampler's choices live on the device: the position and the
    // sampler's uniforms are written, the last tokens copied into the step's ids, one submission
    const replay = (opts.graph ?? true) && sampler.replayable;
    let graph: DeviceGraph | undefined;
    let stepIds: tf.Tensor1D | undefined;
    let stepOut: tf.Tensor1D | undefined;
    let position: tf.Tensor1D | undefined;
    try {
      for (let i = 0; i < maxNew; i++) {
        // the next step is queued (from the tokens still on the device) before this one's read-back
        let next: tf.Tensor1D | undefined;
        if (i + 1 < maxNew) {
          if (graph && stepIds && stepOut && position) {
            graph.run({
              writes: [[position, Int32Array.of(this.pos)], ...sampler.replayWrites()],
              copies: [[stepOut, stepIds]],
            });
            this.pos += 1;
            next = stepOut;
          } else if (replay && i === 0) {
            stepIds = tokens.clone();
            position = tf.tensor1d([this.pos], 'int32');
            const ids = stepIds;
            const at = position;
            graph = captureGraph(() => {
              const l = this.forward(ids, 1, at);
              next = sampler.sample(l);
              l.dispose();
            });
            if (graph) stepOut = next;
          } else {
            logits = this.forward(tokens, 1);
            next = sampler.sample(logits);
            logits.dispose();
          }
          flushBackend();
        }
        const host = await pending;
        if (tokens !== stepOut) tokens.dispose();
        for (let b = 0; b < B; b++) {
          if (done[b]) continue;
          const id = host[b];
          out[b].push(id);
          if (B === 1) opts.onToken?.(id);
          opts.onRowToken?.(b, id);
          if (eos.includes(id)) done[b] = true;
        }
        if (!next) break;
        tokens = next;
        if (done.every(Boolean)) break;
        pending = (
          graph && tokens === stepOut ? graph.read(tokens) : tokens.data()
        ) as Promise<Int32Array>;
      }
    } finally {
      if (tokens !== stepOut) tokens.dispose();
      graph?.dispose();
      tf.dispose([stepIds, stepOut, position].filter((t): t is tf.Tensor1D => t !== undefined));
      sampler.dispose();
    }
    return out;
  }

  dispose(): void {
    for (const l of this.layers) {
      tf.dispose([l.inputNorm, l.postNorm, l.cache]);
      for (const lin of [l.qkv, l.o, l.gateUp, l.down]) lin.parts.forEach(disposePackedWeight);
    }
    if (!this.config.tieWordEmbeddings) this.head.parts.forEach(disposePackedWeight);
    disposePackedWeight(this.embed);
    tf.dispose([this.finalNorm, this.rope, this.starts]);
  }
}

/**
 * Token choice on the device with fixed shapes: greedy is an argmax; otherwise the repetition
 * penalty (a [B, V] presence mask), temperature, a descending top-k (k = V without one), softmax,
 * the top-p cut and an inverse-CDF draw with a uniform from the seeded host generator — the same
 * rule as `sampleToken`.
 */
export class DeviceSampler {
  private presence: tf.Tensor2D | undefined;
  private readonly random: () => number;
  private readonly greedy: boolean;
  private readonly penalty: number;
  private readonly seenHost: number[][];
  /** The uniforms of the last draw (kept: a replayed step draws into them). */
  private u: tf.Tensor2D | undefined;

  constructor(
    private readonly vocab: number,
    private readonly batch: number,
    private readonly opts: GenerateOptions,
  ) {
    this.random = seededRandom(opts.seed ?? 0);
    this.greedy = opts.greedy ?? opts.temperature === undefined;
    this.penalty = opts.repetitionPenalty ?? 1;
    if (!this.greedy && !((opts.temperature ?? 1) > 0))
      throw new InvalidArgumentError(`temperature must be positive, got ${opts.temperature}`);
    this.seenHost = Array.from({ length: batch }, () => []);
  }

  /** Whether a recorded step that samples can be replayed (the presence mask changes shape-wise: no). */
  get replayable(): boolean {
    return this.penalty === 1;
  }

  /** New uniforms [B, 1] for one draw, kept as the sampler's last (outside any tidy). */
  private draw(): tf.Tensor2D {
    const values = Float32Array.from({ length: this.batch }, () => this.random());
    this.u?.dispose();
    this.u = tf.keep(tf.tensor2d(values, [this.batch, 1]));
    return this.u;
  }

  /** What a replay of a recorded sampling step writes: the next draw's uniforms (none when greedy). */
  replayWrites(): [tf.Tensor, Float32Array][] {
    if (this.greedy || !this.u) return [];
    return [[this.u, Float32Array.from({ length: this.batch }, () => this.random())]];
  }

  /** Marks a row's prompt tokens for the repetition penalty. */
  seen(row: number, ids: number[]): void {
    this.seenHost[row].push(...ids);
  }

  private mask(): tf.Tensor2D {
    if (!this.presence) {
      const m = new Float32Array(this.batch * this.vocab);
      this.seenHost.forEach((ids, b) => {
        for (const id of ids) if (id >= 0 && id < this.vocab) m[b * this.vocab + id] = 1;
      });
      this.presence = tf.tensor2d(m, [this.batch, this.vocab]);
    }
    return this.presence;
  }

  /** The next token of every row (int32 [B], on the device). */
  sample(logits: tf.Tensor2D): tf.Tensor1D {
    const V = this.vocab;
    const presence = this.penalty === 1 ? undefined : this.mask(); // made outside any tidy
    const penalised =
      this.penalty === 1
        ? logits
        : tf.tidy(() => {
            const hit = (presence as tf.Tensor2D).greater(0);
            const scaled = tf.where(
              logits.greater(0),
              logits.div(this.penalty),
              logits.mul(this.penalty),
            );
            return tf.where(hit, scaled, logits) as tf.Tensor2D;
          });
    const tokens = tf.tidy(() => {
      if (this.greedy) return tf.argMax(penalised, 1).toInt() as tf.Tensor1D;
      const k = this.opts.topK && this.opts.topK > 0 ? Math.min(this.opts.topK, V) : V;
      const { values, indices } = tf.topk(penalised, k, true);
      const temperature = this.opts.temperature ?? 1;
      let probs = tf.softmax(values.div(temperature));
      const topP = this.opts.topP ?? 1;
      if (topP < 1) {
        const exclusive = tf.cumsum(probs, 1, true);
        probs = probs.mul(exclusive.less(topP).toFloat());
        probs = probs.div(probs.sum(1, true));
      }
      const u = this.draw();
      const cdf = tf.cumsum(probs, 1);
      const choice = tf.minimum(cdf.lessEqual(u).toInt().sum(1), tf.scalar(k - 1, 'int32'));
      const picked = tf.gather(indices, choice.reshape([this.batch, 1]), 1, 1);
      return picked.reshape([this.batch]).toInt() as tf.Tensor1D;
    });
    if (penalised !== logits) penalised.dispose();
    if (presence) {
      this.presence = tf.tidy(
        () => tf.maximum(presence, tf.oneHot(tokens, V).toFloat()) as tf.Tensor2D,
      );
      presence.dispose();
    }
    return tokens;
  }

  dispose(): void {
    this.presence?.dispose();
    this.u?.dispose();
  }
}
