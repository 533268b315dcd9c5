// One optimizer step of a fine-tuning run (forward, backward, global-norm clip, AdamW), and its
// recorded form: on a backend that records device graphs (webgpu), a step is recorded once and
// replayed, so that a step costs one submission instead of ~700 trips
// through tfjs (edkm-tiny 8×256 on an H200: 112 ms of host work for 15 ms of GPU kernels).
import {
  type DeviceGraph,
  type GraphProfile,
  InvalidArgumentError,
  canCaptureGraph,
  captureGraph,
  makeResident,
  tf,
} from '@edkm/core';
import type { Palettizer } from '@edkm/dkm';
import type { LlamaModel } from '@edkm/llama';
import type { TrainBatch } from '../data';
import { type AdamW, globalNormAndClip } from '../optim';

/** What a step leaves on the device: its losses (one per micro-batch) and [norm, clip factor]. */
export interface StepOutput {
  losses: tf.Scalar[];
  clip: tf.Tensor1D;
}

export interface TrainStepOptions {
  /** Global gradient-norm clip (0: none). */
  clip: number;
  /**
   * Record the step as a device graph and replay it (default true): where the backend can record
   * and the batches keep their shapes (padding, segments and position ids become device tensors
   * the replay rewrites); otherwise, and after a failed recording, each step runs op by op.
   */
  graph?: boolean;
  /** Told once what became of the graph (recorded, or why not). */
  log?: (line: string) => void;
  /**
   * The palettized layers, prepared from `weights` before every step (default: none). A step is
   * recorded with its prepare where every layer prepares on the device alone (eDKM on code
   * tables: Palettizer.canPrepareOnDevice); otherwise each step prepares on the host, op by op.
   */
  palettizer?: Palettizer;
  weights?: Map<string, tf.Tensor>;
}

/** The device inputs a recorded step reads, rewritten before each replay. */
interface GraphInputs {
  ids: tf.Tensor2D[];
  targets: tf.Tensor1D[];
  weights: tf.Tensor1D[];
  /** Batches with padding, segments or position ids: their mask and positions. */
  masks?: tf.Tensor4D[];
  positions?: tf.Tensor2D[];
  sched: tf.Tensor1D;
}

/**
 * A batch as lossFromTensors takes it: ids, next-token targets, weights summing to 1, and where
 * the batch has padding, segments or position ids, its additive mask and positions.
 */
interface EncodedBatch {
  shape: [number, number];
  ids: Int32Array;
  targets: Int32Array;
  weights: Float32Array;
  mask?: { values: Float32Array; shape: [number, number, number, number] };
  positions?: Int32Array;
}

/**
 * Runs training steps: `gradAccum` micro-batches (one per entry of `run`'s batches), their mean
 * gradient clipped by its global norm on the device, one AdamW update, nothing read back.
 *
 * With the graph on, the first step runs op by op (it compiles the kernels), the second is recorded
 * while it runs (captureGraph), and every later step with batches of the same shape replays it:
 * the token ids, targets, weights and the AdamW schedule (learning rate, bias corrections) are
 * written into the graph's input tensors, and the loss and clip factor are copied out after the
 * replay. The graph keeps every buffer of the step alive (no reuse of freed intermediates within
 * it): device memory for the step's activations may be up to twice the op-by-op peak.
 */
export class TrainStep {
  private readonly names: string[];
  private readonly vars: tf.Variable[];
  private graph?: DeviceGraph;
  private inputs?: GraphInputs;
  private outputs?: StepOutput;
  private state: 'warm-up' | 'record' | 'replay' | 'off';
  private replayCount = 0;

  constructor(
    private readonly model: LlamaModel,
    private readonly trainable: Map<string, tf.Variable>,
    private readonly optimizer: AdamW,
    private readonly opts: TrainStepOptions,
  ) {
    this.names = [...trainable.keys()];
    this.vars = this.names.map((n) => trainable.get(n)!);
    this.state = opts.graph === false ? 'off' : 'warm-up';
  }

  /** Replays so far (0 where the step runs op by op). */
  get replays(): number {
    return this.replayCount;
  }

  /** Whether later steps replay a recorded graph. */
  get recorded(): boolean {
    return this.graph !== undefined;
  }

  /**
   * One optimizer step over `batches` (the micro-batches) at learning rate `lr`, the palettized
   * layers prepared first. Resolves once the step is queued (nothing is read back).
   */
  async run(batches: TrainBatch[], lr: number): Promise<StepOutput> {
    if (batches.length === 0) throw new InvalidArgumentError('a training step needs a batch');
    if (this.state === 'off') return this.eager(batches, lr);
    const encoded = this.encode(batches);
    if (encoded.some((e) => Boolean(e.mask) !== Boolean(encoded[0].mask))) {
      this.stopGraph('some micro-batches have masks and some not');
      return this.eager(batches, lr);
    }
    if (this.state === 'warm-up') {
      // cpu and wasm cannot record: their host work is the computation
      this.state = canCaptureGraph() ? 'record' : 'off';
      return this.eager(batches, lr);
    }
    if (this.state === 'record') {
      const p = this.opts.palettizer;
      if (p && p.layers.size > 0 && !p.canPrepareOnDevice()) {
        this.stopGraph('a palettized layer prepares on the host');
        return this.eager(batches, lr);
      }
      await p?.settled(); // the warm-up's reads land before the recording starts
      return this.record(encoded, lr);
    }
    if (!this.fits(encoded)) {
      this.stopGraph('the batch shape changed');
      return this.eager(batches, lr);
    }
    return this.replay(encoded, lr);
  }

  /** Releases the graph and its input tensors. */
  dispose(): void {
    this.graph?.dispose();
    this.graph = undefined;
    if (this.inputs) {
      tf.dispose(inputTensors(this.inputs));
      this.inputs = undefined;
    }
    if (this.outputs) tf.dispose([...this.outputs.losses, this.outputs.clip]);
    this.outputs = undefined;
  }

  private stopGraph(why: string): void {
    if (this.state !== 'off') this.opts.log?.(`step graph: off (${why})`);
    this.dispose();
    this.state = 'off';
  }

  /** Each micro-batch's device inputs as host arrays (mask and positions where it has any). */
  private encode(batches: TrainBatch[]): EncodedBatch[] {
    return batches.map((b) => {
      const { targets, weights, count } = this.model.lossTargets(b.inputIds, b.labels);
      const B = b.inputIds.length;
      const T = b.inputIds[0].length;
      const ids = new Int32Array(B * T);
      b.inputIds.forEach((row, i) => ids.set(row, i * T));
      const encoded: EncodedBatch = {
        shape: [B, T],
        ids,
        targets,
        weights: weights.map((w) => w / count),
      };
      if (b.attentionMask || b.segmentIds || b.positionIds) {
        encoded.mask = this.model.attentionBias(B, T, 0, b);
        encoded.positions = new Int32Array(B * T);
        for (let r = 0; r < B; r++)
          for (let t = 0; t < T; t++) encoded.positions[r * T + t] = b.positionIds?.[r][t] ?? t;
      }
      return encoded;
    });
  }

  /** Whether a batch fits the recorded step's inputs (shapes, and masks or none). */
  private fits(encoded: EncodedBatch[]): boolean {
    const inputs = this.inputs!;
    return (
      encoded.length === inputs.ids.length &&
      encoded.every(
        (e, i) =>
          e.shape.join() === inputs.ids[i].shape.join() &&
          (e.mask?.shape.join() ?? '') === (inputs.masks?.[i].shape.join() ?? ''),
      )
    );
  }

  /** The step op by op: the layers prepared on the host, the model's loss on the host arrays. */
  private async eager(batches: TrainBatch[], lr: number): Promise<StepOutput> {
    const { palettizer } = this.opts;
    if (palettizer && palettizer.layers.size > 0) await palettizer.prepare(this.weightsMap());
    return this.accumulate(
      batches.map(
        (b) => () =>
          this.model.loss(b.inputIds, b.labels, {
            attentionMask: b.attentionMask,
            segmentIds: b.segmentIds,
            positionIds: b.positionIds,
          }),
      ),
      lr,
    );
  }

  /**
   * Forward and backward of each micro-batch, the mean gradient, the clip factor, AdamW (`sched`:
   * its schedule from a device tensor).
   */
  private accumulate(losses: (() => tf.Scalar)[], lr: number, sched?: tf.Tensor1D): StepOutput {
    const { names, vars, trainable, optimizer } = this;
    const values: tf.Scalar[] = [];
    let accumulated: Record<string, tf.Tensor> | undefined;
    for (const loss of losses) {
      const { value, grads } = tf.variableGrads(loss, vars);
      const named: Record<string, tf.Tensor> = {};
      names.forEach((n, i) => {
        named[n] = grads[vars[i].name];
      });
      if (!accumulated) accumulated = named;
      else {
        for (const n of names) {
          const sum = accumulated[n].add(named[n]);
          tf.dispose([accumulated[n], named[n]]);
          accumulated[n] = sum;
        }
      }
      values.push(value);
    }
    const grads = accumulated!;
    if (losses.length > 1)
      for (const n of names) {
        const mean = grads[n].div(losses.length);
        grads[n].dispose();
        grads[n] = mean;
      }
    // the global norm and the clip factor stay on the device (no read-back in the step)
    const clip = globalNormAndClip(grads, this.opts.clip);
    optimizer.apply(trainable, grads, lr, clip, sched);
    tf.dispose(Object.values(grads));
    return { losses: values, clip };
  }

  /** Runs this step while recording it; its results are real either way. */
  private record(encoded: EncodedBatch[], lr: number): StepOutput {
    const inputs: GraphInputs = {
      ids: encoded.map((e) => tf.tensor2d(e.ids, e.shape, 'int32')),
      targets: encoded.map((e) => tf.tensor1d(e.targets, 'int32')),
      weights: encoded.map((e) => tf.tensor1d(e.weights)),
      ...(encoded[0].mask
        ? {
            masks: encoded.map((e) => tf.tensor4d(e.mask!.values, e.mask!.shape)),
            positions: encoded.map((e) => tf.tensor2d(e.positions!, e.shape, 'int32')),
          }
        : {}),
      // the step this update will be: AdamW.apply() starts it inside the recorded work
      sched: tf.tensor1d(this.optimizer.schedule(lr, 1)),
    };
    // on the device before the recording: an op whose inputs all hold host values runs on the
    // host (tfjs-webgpu's small-tensor shortcut), and a replay would repeat its recorded result
    for (const t of inputTensors(inputs)) makeResident(t);
    let out: StepOutput | undefined;
    const { palettizer } = this.opts;
    const graph = captureGraph(() => {
      if (palettizer && palettizer.layers.size > 0) palettizer.prepareOnDevice(this.weightsMap());
      out = this.accumulate(
        inputs.ids.map(
          (ids, i) => () =>
            this.model.lossFromTensors(ids, inputs.targets[i], inputs.weights[i], {
              maskTensor: inputs.masks?.[i],
              positionTensor: inputs.positions?.[i],
            }),
        ),
        lr,
        inputs.sched,
      );
    });
    if (!graph) {
      tf.dispose(inputTensors(inputs));
      this.state = 'off';
      this.opts.log?.('step graph: off (this backend or this step cannot be recorded)');
      return out!;
    }
    this.graph = graph;
    this.inputs = inputs;
    this.outputs = out!;
    this.state = 'replay';
    this.opts.log?.(`step graph: recorded ${graph.dispatches} dispatches; later steps replay them`);
    return this.copyOut();
  }

  /**
   * One more step, replayed with each kernel timed on the device (DeviceGraph.profile): GPU time
   * per kernel. Undefined where no step is recorded or the device has no timestamp queries.
   */
  async profileStep(batches: TrainBatch[], lr: number): Promise<GraphProfile | undefined> {
    const encoded = this.encode(batches);
    if (!this.graph?.profile || !this.fits(encoded)) return undefined;
    const writes = this.replayWrites(encoded, lr);
    const profile = await this.graph.profile({ writes });
    this.replayCount++;
    this.opts.palettizer?.replayedPrepare();
    return profile;
  }

  /** The writes of a replay: the AdamW schedule of a new optimizer step, then each batch. */
  private replayWrites(
    encoded: EncodedBatch[],
    lr: number,
  ): [tf.Tensor, Int32Array | Float32Array][] {
    const inputs = this.inputs!;
    this.optimizer.beginStep();
    const writes: [tf.Tensor, Int32Array | Float32Array][] = [
      [inputs.sched, this.optimizer.schedule(lr)],
    ];
    encoded.forEach((e, i) => {
      writes.push(
        [inputs.ids[i], e.ids],
        [inputs.targets[i], e.targets],
        [inputs.weights[i], e.weights],
      );
      if (inputs.masks && e.mask && e.positions)
        writes.push([inputs.masks[i], e.mask.values], [inputs.positions![i], e.positions]);
    });
    return writes;
  }

  /** Rewrites the inputs, replays the step, copies its results out of the graph's buffers. */
  private replay(encoded: EncodedBatch[], lr: number): StepOutput {
    const { inputs } = this;
    if (!inputs || !this.graph) throw new InvalidArgumentError('step graph: not recorded');
    const writes = this.replayWrites(encoded, lr);
    const result: StepOutput = {
      losses: encoded.map(() => tf.zeros([]) as tf.Scalar),
      clip: tf.zeros([2]) as tf.Tensor1D,
    };
    const out = this.outputs!;
    this.graph.run({
      writes,
      after: [
        ...out.losses.map((l, i) => [l, result.losses[i]] as [tf.Tensor, tf.Tensor]),
        [out.clip, result.clip],
      ],
    });
    this.replayCount++;
    this.opts.palettizer?.replayedPrepare();
    return result;
  }

  /** The weights the palettizer prepares from (default: the trainables). */
  private weightsMap(): Map<string, tf.Tensor> {
    return this.opts.weights ?? this.trainable;
  }

  /** The recorded step's results, copied (the next replay overwrites the graph's own). */
  private copyOut(): StepOutput {
    const out = this.outputs!;
    return tf.tidy(() => ({
      losses: out.losses.map((l) => l.add(0) as tf.Scalar),
      clip: out.clip.add(0) as tf.Tensor1D,
    }));
  }
}

function inputTensors(inputs: GraphInputs): tf.Tensor[] {
  const { ids, targets, weights, masks, positions, sched } = inputs;
  return [...ids, ...targets, ...weights, ...(masks ?? []), ...(positions ?? []), sched];
}
