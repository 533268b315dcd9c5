import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, StateError, tf } from '@edkm/core';
import {
  type GenerateOptions,
  type KVCache,
  KvCacheStep,
  type LlamaConfig,
  Tokenizer,
  generateFromLogits,
  rmsNorm,
  ropeInverseFrequencies,
  ropeTables,
  rotateHalfMatrix,
  selfAttention,
} from '@edkm/llama';
import { type ByteRange, FlashLayout } from './layout';
import { type PlannedRead, planReads, splitReads } from './plan';
import {
  AllNeurons,
  LowRankPredictor,
  type NeuronPredictor,
  type NeuronSelection,
  OraclePredictor,
  type SelectOptions,
} from './predictor';
import { RangeReader, type ReadBatch } from './reader';
import { NeuronWindow, type SlotBatch } from './window';

/** Bytes, or a percentage of the layout's FFN bytes (the part that lives on disk), e.g. '50%'. */
export type MemoryBudget = number | `${number}%`;

export type PredictorSpec =
  | 'all'
  | ({ kind: 'oracle' } & SelectOptions)
  /** `path` defaults to predictor.safetensors in the layout folder. */
  | ({ kind: 'low-rank'; path?: string } & SelectOptions)
  | NeuronPredictor;

export interface FlashOptions {
  /** Memory for FFN neurons (default '100%'): neuron cache plus streaming buffers. */
  memoryBudget?: MemoryBudget;
  /**
   * Tokens whose neurons stay in memory (default 4); the others are evicted at once. Infinity:
   * evict only for room, least recently used first.
   */
  window?: number;
  /** Which neurons a token computes (default 'all': exact). */
  predictor?: PredictorSpec;
  /**
   * 'window' (default): predicted neurons, windowed cache, merged reads. 'naive': every neuron,
   * whole layers kept while they fit the budget, the others read whole for every token.
   */
  strategy?: 'window' | 'naive';
  /** Neighbouring reads closer than this are merged into one (default 0: only touching ones). */
  mergeGapBytes?: number;
  /** Read with O_DIRECT, bypassing the page cache (Linux). */
  direct?: boolean;
}

export interface FlashStats {
  strategy: 'window' | 'naive';
  predictor: string;
  tokens: number;
  /** Wall time inside forward(), and the part of it spent waiting for reads. */
  seconds: number;
  ioWaitSeconds: number;
  tokensPerSecond: number;
  reads: number;
  /** Bytes transferred from the file (block-aligned with O_DIRECT, gaps of merged reads included). */
  bytesRead: number;
  /** Bytes of the neurons asked for. */
  neededBytes: number;
  readsPerToken: number;
  bytesReadPerToken: number;
  meanReadBytes: number;
  /** Neuron-layer uses over all forwards (a neuron used by several tokens of one forward counts once). */
  neuronsUsed: number;
  cacheHits: number;
  cacheMisses: number;
  hitRate: number;
  memory: {
    /** The FFN budget in bytes, what the neuron memory can hold, the resident weights, the layout. */
    budgetBytes: number;
    neuronMemoryBytes: number;
    residentBytes: number;
    ffnBytes: number;
    /** The predictor's weights (float32), in memory beside the resident weights. */
    predictorBytes: number;
    /** (resident + neuron memory + predictor) / (resident + FFN): the model's share held in memory. */
    fractionOfModel: number;
  };
}

const NEG = -1e9;

/** Budget bytes from bytes or a percentage of `ffnBytes`. */
export function budgetBytes(budget: MemoryBudget, ffnBytes: number): number {
  if (typeof budget === 'number') {
    if (!(budget >= 0))
      throw new InvalidArgumentError(`memory budget must be ≥ 0 bytes, got ${budget}`);
    return Math.floor(budget);
  }
  const m = /^(\d+(?:\.\d+)?)%$/.exec(budget);
  if (!m)
    throw new InvalidArgumentError(`memory budget '${budget}' is neither bytes nor a percentage`);
  return Math.floor((Number(m[1]) / 100) * ffnBytes);
}

/** Neuron rows in memory: gate, up and down (down columns stored as rows), [slots, H] each. */
interface NeuronSlab {
  gate: Float32Array;
  up: Float32Array;
  down: Float32Array;
}

const newSlab = (slots: number, H: number): NeuronSlab => ({
  gate: new Float32Array(slots * H),
  up: new Float32Array(slots * H),
  down: new Float32Array(slots * H),
});

/** Reads in flight for one batch of neurons: the ranges asked for, as merged reads. */
interface PendingRead {
  ranges: ByteRange[];
  reads: PlannedRead[];
  batch: Promise<ReadBatch>;
}

/** How a layer's FFN is computed this step: batches of slots in a slab, some loaded first. */
interface FfnPlan {
  slab: NeuronSlab;
  batches: SlotBatch[];
}

/**
 * A LLaMA whose attention, norms, embeddings and LM head are in memory and whose FFN neurons are
 * read from a flash layout when a token needs them. Open one with `openFlash`.
 */
export class FlashModel {
  readonly layout: FlashLayout;
  readonly config: LlamaConfig;
  readonly tokenizer?: Tokenizer;
  readonly predictor: NeuronPredictor;
  /** Called with each layer's FFN input [T, H] (e.g. to collect activations for training). */
  onFfnInput?: (layer: number, x: tf.Tensor2D) => void;
  private readonly weights = new Map<string, tf.Tensor>();
  private readonly rotateHalf: tf.Tensor2D;
  private readonly invFreq: Float32Array;
  private readonly reader: RangeReader;
  private readonly strategy: 'window' | 'naive';
  private readonly mergeGap: number;
  private readonly budget: number;
  private readonly windows: NeuronWindow[] = [];
  private readonly slabs: NeuronSlab[] = [];
  /** naive: layers kept whole, and the buffer the others stream through. */
  private readonly naiveResident: (NeuronSlab | undefined)[] = [];
  private naiveChunk = 0;
  private readonly everyNeuron: NeuronSelection;
  private step = 0;
  private closed = false;
  private counters = freshCounters();

  /** @internal use openFlash */
  constructor(
    layout: FlashLayout,
    reader: RangeReader,
    predictor: NeuronPredictor,
    opts: FlashOptions,
  ) {
    this.layout = layout;
    this.config = layout.config;
    this.reader = reader;
    this.predictor = predictor;
    this.strategy = opts.strategy ?? 'window';
    this.mergeGap = opts.mergeGapBytes ?? 0;
    const c = this.config;
    const m = layout.manifest;
    const H = c.hiddenSize;
    const I = c.intermediateSize;
    const L = c.numHiddenLayers;
    this.budget = budgetBytes(opts.memoryBudget ?? '100%', layout.ffnBytes);
    this.everyNeuron = { neurons: Int32Array.from({ length: I }, (_, i) => i) };
    if (this.strategy === 'window') {
      const perLayer = Math.min(I, Math.floor(this.budget / (L * m.neuronBytes)));
      if (perLayer < 1)
        throw new InvalidArgumentError(
          `a memory budget of ${this.budget} bytes holds no neuron in each of ${L} layers (${m.neuronBytes} bytes each)`,
        );
      for (let l = 0; l < L; l++) {
        this.windows.push(new NeuronWindow(I, perLayer, opts.window ?? 4));
        this.slabs.push(newSlab(perLayer, H));
      }
    } else if (this.strategy === 'naive') {
      const allFit = this.budget >= L * m.layerBytes;
      // one layer's worth of the budget is the buffer the streamed layers pass through
      const kept = allFit ? L : Math.max(0, Math.floor(this.budget / m.layerBytes) - 1);
      for (let l = 0; l < L; l++)
        this.naiveResident.push(l < kept ? layout.readLayer(l) : undefined);
      const left = this.budget - kept * m.layerBytes;
      this.naiveChunk = allFit ? 0 : Math.min(I, Math.floor(left / m.neuronBytes));
      if (!allFit && this.naiveChunk < 1)
        throw new InvalidArgumentError(
          `a memory budget of ${this.budget} bytes cannot hold one neuron`,
        );
      if (!allFit) this.slabs.push(newSlab(this.naiveChunk, H));
    } else throw new InvalidArgumentError(`unknown strategy '${this.strategy}'`);

    for (const [name, w] of layout.readResident())
      this.weights.set(name, tf.tensor(w.data, w.shape));
    this.rotateHalf = rotateHalfMatrix(c.headDim);
    this.invFreq = ropeInverseFrequencies(c);
    const tokenizerPath = join(layout.dir, 'tokenizer.json');
    if (existsSync(tokenizerPath)) {
      const cfgPath = join(layout.dir, 'tokenizer_config.json');
      this.tokenizer = new Tokenizer(
        JSON.parse(readFileSync(tokenizerPath, 'utf8')),
        existsSync(cfgPath) ? JSON.parse(readFileSync(cfgPath, 'utf8')) : {},
      );
    }
  }

  private w(name: string): tf.Tensor2D {
    return this.weights.get(name) as tf.Tensor2D;
  }

  private rmsNorm(x: tf.Tensor, name: string): tf.Tensor {
    return rmsNorm(x, this.w(name), this.config.rmsNormEps);
  }

  /**
   * Logits [T, vocab] of token ids (one sequence), continuing `cache` when given (it grows in
   * place). The same computation as LlamaModel.forward, with each layer's FFN restricted to the
   * neurons the predictor selects and read from disk when they are not in memory.
   */
  async forward(ids: number[], cache?: KVCache): Promise<tf.Tensor2D> {
    if (this.closed) throw new StateError('the flash model is closed');
    const c = this.config;
    const T = ids.length;
    const past = cache?.length ?? 0;
    if (T === 0) throw new InvalidArgumentError('forward: no tokens');
    if (past + T > c.maxPositionEmbeddings)
      throw new InvalidArgumentError(
        `${past + T} positions exceed max_position_embeddings ${c.maxPositionEmbeddings}`,
      );
    const t0 = performance.now();
    const Hd = c.hiddenSize;
    const Tk = past + T;
    const [cos, sin, mask] = tf.tidy(() => {
      const positions = tf.range(past, past + T, 1, 'int32').expandDims(0) as tf.Tensor2D;
      const m = new Float32Array(T * Tk);
      for (let i = 0; i < T; i++)
        for (let j = 0; j < Tk; j++) m[i * Tk + j] = j <= past + i ? 0 : NEG;
      return [...ropeTables(positions, this.invFreq), tf.tensor4d(m, [1, 1, T, Tk])];
    });
    const kv = new KvCacheStep(cache);
    let x: tf.Tensor2D = tf.tidy(() =>
      tf.gather(this.w('model.embed_tokens.weight'), tf.tensor1d(ids, 'int32')),
    );
    try {
      for (let l = 0; l < c.numHiddenLayers; l++) {
        const p = `model.layers.${l}.`;
        const { residual, ffnInput } = tf.tidy(() => {
          const h = this.rmsNorm(x, `${p}input_layernorm.weight`) as tf.Tensor2D;
          const attention = selfAttention(
            h,
            (a, which) => tf.matMul(a, this.w(`${p}self_attn.${which}_proj.weight`), false, true),
            {
              config: c,
              B: 1,
              T,
              cos,
              sin,
              mask,
              rotateHalf: this.rotateHalf,
              past: kv.past(l),
            },
          );
          kv.keep(attention);
          const residual = x.add(attention.out) as tf.Tensor2D;
          const ffnInput = this.rmsNorm(
            residual,
            `${p}post_attention_layernorm.weight`,
          ) as tf.Tensor2D;
          return { residual, ffnInput };
        });
        x.dispose();
        x = residual;
        try {
          this.onFfnInput?.(l, ffnInput);
          // naive computes every neuron: no prediction
          const selection =
            this.strategy === 'naive' ? this.everyNeuron : await this.predictor.select(l, ffnInput);
          const y = await this.ffn(l, ffnInput, selection, this.step + T - 1);
          x = tf.tidy(() => residual.add(y));
          y.dispose();
        } finally {
          residual.dispose();
          ffnInput.dispose();
        }
        if (x.shape[1] !== Hd) throw new StateError('FFN output has the wrong width');
      }
      const logits = tf.tidy(() => {
        const final = this.rmsNorm(x, 'model.norm.weight') as tf.Tensor2D;
        const head = c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
        return tf.matMul(final, this.w(head), false, true) as tf.Tensor2D;
      });
      kv.commit(past + T);
      this.step += T;
      this.counters.tokens += T;
      return logits;
    } catch (err) {
      kv.discard();
      throw err;
    } finally {
      tf.dispose([x, cos, sin, mask]);
      this.counters.seconds += (performance.now() - t0) / 1000;
    }
  }

  /** The FFN of layer `l` for input x [T, H] on the selected neurons. */
  private async ffn(
    l: number,
    x: tf.Tensor2D,
    sel: NeuronSelection,
    step: number,
  ): Promise<tf.Tensor2D> {
    const I = this.config.intermediateSize;
    this.counters.neuronsUsed += sel.neurons.length;
    let plan: FfnPlan;
    if (this.strategy === 'window') {
      const p = this.windows[l].plan(step, sel.neurons);
      this.counters.hits += p.hits;
      this.counters.misses += p.misses;
      plan = { slab: this.slabs[l], batches: p.batches };
    } else {
      const all = this.everyNeuron.neurons;
      const kept = this.naiveResident[l];
      if (kept) plan = { slab: kept, batches: [{ neurons: all, slots: all, load: false }] };
      else {
        const batches: SlotBatch[] = [];
        for (let at = 0; at < I; at += this.naiveChunk) {
          const neurons = all.subarray(at, Math.min(I, at + this.naiveChunk));
          batches.push({ neurons, slots: Int32Array.from(neurons, (_, j) => j), load: true });
        }
        plan = { slab: this.slabs[0], batches };
      }
    }
    // mask columns of the selection, by neuron id
    let column: Int32Array | undefined;
    if (sel.mask) {
      column = new Int32Array(I).fill(-1);
      sel.neurons.forEach((n, j) => {
        column![n] = j;
      });
    }
    const loads = plan.batches.filter((b) => b.load);
    let nextLoad = 0;
    const startRead = (): PendingRead => {
      const b = loads[nextLoad++];
      const ranges = this.layout.neuronRanges(l, b.neurons);
      const reads = planReads(ranges, this.mergeGap);
      for (const r of ranges) this.counters.neededBytes += r.length;
      return { ranges, reads, batch: this.reader.read(reads) };
    };
    let pending: PendingRead | undefined = loads.length ? startRead() : undefined;
    let y: tf.Tensor2D | undefined;
    try {
      for (const b of plan.batches) {
        if (b.load) {
          const current = pending!;
          const t0 = performance.now();
          const data = await current.batch;
          this.counters.ioWait += (performance.now() - t0) / 1000;
          // the next load's reads run while this batch is decoded and computed
          pending = nextLoad < loads.length ? startRead() : undefined;
          this.layout.decodeInto(
            splitReads(current.ranges, current.reads, data.views),
            b.slots,
            plan.slab.gate,
            plan.slab.up,
            plan.slab.down,
          );
          data.release();
        }
        const part = this.ffnOnSlots(x, plan.slab, b, sel, column);
        if (y) {
          const sum = tf.add(y, part) as tf.Tensor2D;
          tf.dispose([y, part]);
          y = sum;
        } else y = part;
      }
    } catch (err) {
      y?.dispose();
      if (pending)
        pending.batch.then(
          (d) => d.release(),
          () => {},
        );
      throw err;
    }
    return y ?? tf.zeros([x.shape[0], this.config.hiddenSize]);
  }

  /** silu(x·Gᵀ) ⊙ (x·Uᵀ) · D over the batch's slots (masked per token when the tokens differ). */
  private ffnOnSlots(
    x: tf.Tensor2D,
    slab: NeuronSlab,
    b: SlotBatch,
    sel: NeuronSelection,
    column: Int32Array | undefined,
  ): tf.Tensor2D {
    const H = this.config.hiddenSize;
    const k = b.slots.length;
    const T = x.shape[0];
    const rows = (src: Float32Array) => {
      const first = b.slots[0];
      if (b.slots[k - 1] - first === k - 1 && isAscending(b.slots))
        return src.subarray(first * H, (first + k) * H);
      const out = new Float32Array(k * H);
      for (let j = 0; j < k; j++)
        out.set(src.subarray(b.slots[j] * H, (b.slots[j] + 1) * H), j * H);
      return out;
    };
    return tf.tidy(() => {
      const g = tf.matMul(x, tf.tensor2d(rows(slab.gate), [k, H]), false, true);
      const u = tf.matMul(x, tf.tensor2d(rows(slab.up), [k, H]), false, true);
      let a = tf.mul(tf.mul(g, tf.sigmoid(g)), u) as tf.Tensor2D;
      if (sel.mask && column) {
        const n = sel.neurons.length;
        const m = new Float32Array(T * k);
        for (let t = 0; t < T; t++)
          for (let j = 0; j < k; j++) m[t * k + j] = sel.mask[t * n + column[b.neurons[j]]];
        a = tf.mul(a, tf.tensor2d(m, [T, k]));
      }
      return tf.matMul(a, tf.tensor2d(rows(slab.down), [k, H]));
    });
  }

  /** Logits [B, T, V] of int32 ids [B, T], one sequence at a time (the evaluator's entry). */
  async logits(ids: tf.Tensor2D): Promise<tf.Tensor3D> {
    const rows = (await ids.array()) as number[][];
    const out: tf.Tensor2D[] = [];
    try {
      for (const row of rows) out.push(await this.forward(row));
      return tf.stack(out) as tf.Tensor3D;
    } finally {
      tf.dispose(out);
    }
  }

  /** KV-cached generation after `promptIds`, with @edkm/llama's sampling rules and loop. */
  generate(promptIds: number[], opts: GenerateOptions = {}): Promise<number[]> {
    return generateFromLogits(
      (ids, cache) => this.forward(ids, cache),
      this.config,
      promptIds,
      opts,
    );
  }

  /** Counters since opening (or the last resetStats). */
  stats(): FlashStats {
    const k = this.counters;
    const r = this.reader.stats;
    const m = this.layout.manifest;
    const neuronMemory =
      this.strategy === 'window'
        ? this.windows.reduce((s, w) => s + w.capacity, 0) * m.neuronBytes
        : this.naiveResident.filter(Boolean).length * m.layerBytes +
          this.naiveChunk * m.neuronBytes;
    const resident = this.layout.residentBytes;
    const predictorBytes = this.strategy === 'naive' ? 0 : (this.predictor.bytes ?? 0);
    const tokens = Math.max(1, k.tokens);
    return {
      strategy: this.strategy,
      predictor: this.strategy === 'naive' ? 'all (naive)' : this.predictor.name,
      tokens: k.tokens,
      seconds: k.seconds,
      ioWaitSeconds: k.ioWait,
      tokensPerSecond: k.seconds ? k.tokens / k.seconds : 0,
      reads: r.reads - k.reads,
      bytesRead: r.bytesRead - k.bytesRead,
      neededBytes: k.neededBytes,
      readsPerToken: (r.reads - k.reads) / tokens,
      bytesReadPerToken: (r.bytesRead - k.bytesRead) / tokens,
      meanReadBytes: r.reads - k.reads ? (r.bytesRead - k.bytesRead) / (r.reads - k.reads) : 0,
      neuronsUsed: k.neuronsUsed,
      cacheHits: k.hits,
      cacheMisses: k.misses,
      hitRate: k.hits + k.misses ? k.hits / (k.hits + k.misses) : 0,
      memory: {
        budgetBytes: this.budget,
        neuronMemoryBytes: neuronMemory,
        residentBytes: resident,
        ffnBytes: this.layout.ffnBytes,
        predictorBytes,
        fractionOfModel:
          (resident + neuronMemory + predictorBytes) / (resident + this.layout.ffnBytes),
      },
    };
  }

  /** Zeroes the counters (the neuron memory keeps its contents). */
  resetStats(): void {
    this.counters = freshCounters(this.reader.stats);
  }

  /** Releases the weights, the predictor and the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    tf.dispose([...this.weights.values(), this.rotateHalf]);
    this.weights.clear();
    this.predictor.dispose();
    await this.reader.close();
  }
}

function isAscending(a: Int32Array): boolean {
  for (let i = 1; i < a.length; i++) if (a[i] <= a[i - 1]) return false;
  return true;
}

/** The predictor a spec names, for a layout. */
export function makePredictor(layout: FlashLayout, spec: PredictorSpec = 'all'): NeuronPredictor {
  const c = layout.config;
  if (spec === 'all') return new AllNeurons(c.intermediateSize);
  if (!('kind' in spec)) return spec;
  const { kind, ...select } = spec;
  if (kind === 'oracle') {
    const layers = Array.from({ length: c.numHiddenLayers }, (_, l) => layout.readLayer(l));
    return new OraclePredictor(layers, c.hiddenSize, select);
  }
  if (kind === 'low-rank') {
    const { path, ...opts } = select as { path?: string } & SelectOptions;
    return LowRankPredictor.load(path ?? join(layout.dir, 'predictor.safetensors'), opts, {
      layers: c.numHiddenLayers,
      hiddenSize: c.hiddenSize,
      intermediateSize: c.intermediateSize,
    });
  }
  throw new InvalidArgumentError(`unknown predictor kind '${kind as string}'`);
}

/**
 * Opens a flash layout folder (see writeFlashLayout) for inference within a memory budget:
 * `openFlash(dir, { memoryBudget: '50%', window: 4, predictor: { kind: 'low-rank', topK: 0.5 } })`.
 */
export async function openFlash(dir: string, opts: FlashOptions = {}): Promise<FlashModel> {
  const layout = new FlashLayout(dir);
  const predictor = makePredictor(layout, opts.predictor);
  const reader = await RangeReader.open(layout.ffnPath, { direct: opts.direct });
  try {
    return new FlashModel(layout, reader, predictor, opts);
  } catch (err) {
    predictor.dispose();
    await reader.close();
    throw err;
  }
}

/** Zeroed counters; reads and bytes are counted from the reader's totals at this point. */
function freshCounters(readerTotals = { reads: 0, bytesRead: 0 }) {
  return {
    tokens: 0,
    seconds: 0,
    ioWait: 0,
    neuronsUsed: 0,
    hits: 0,
    misses: 0,
    reads: readerTotals.reads,
    bytesRead: readerTotals.bytesRead,
    neededBytes: 0,
  };
}
