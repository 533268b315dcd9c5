// A fine-tuning run once its options are checked and its palettizer planned: the model and the
// data loaded, the state restored from a checkpoint, the training steps (plain or with
// --checkpointing), the read-back of losses into the log, the checkpoints and the final export.
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { NonFiniteError, StateError, backendBytes, measurePeakBytes, tf } from '@edkm/core';
import type { Palettizer } from '@edkm/dkm';
import { type LlamaModel, layerwiseStep, loadLlama } from '@edkm/llama';
import { type DenseWeight, type SizeReport, writePalettized } from '@edkm/palettized';
import { type Checkpoint, checkpointPath, loadCheckpoint, saveCheckpoint } from '../checkpoint';
import { type TrainData, openTrainData } from '../data';
import { AdamW, globalNormAndClip, learningRate } from '../optim';
import {
  DEFAULT_READ_EVERY,
  type FinetuneOptions,
  type RunControl,
  describeConfig,
} from './options';
import { TrainStep } from './step';

/** One logged step, as the checkpoint keeps it. */
export interface StepRecord {
  step: number;
  loss: number;
  lr: number;
  tokens: number;
}

/** What a step leaves on the device: its losses (one per micro-batch) and [norm, clip factor]. */
interface StepResult {
  losses: tf.Scalar[];
  tokens: number;
  clip: tf.Tensor1D;
}

/** A step queued but not yet read back. */
interface PendingStep extends StepResult {
  step: number;
  lr: number;
  stepStart: number;
  peakExtraBytes: number;
}

export class TrainingRun {
  /** The step the run starts from (the checkpoint's on --resume). */
  start = 0;
  /** Every step read back so far (the checkpoint's first). */
  history: StepRecord[] = [];
  tokensSeen = 0;
  peakBytes = 0;
  lastLoss = Number.NaN;
  private t0 = 0;
  private readonly ckptPath: string;
  private readonly logPath: string;
  // the losses and gradient norms stay on the device until `readEvery` steps have queued (or a
  // checkpoint is due): the host keeps queueing work instead of waiting for each step's loss, and
  // the log, the progress bar and the divergence check lag by at most that many steps
  private readonly readEvery: number;
  private readonly pending: PendingStep[] = [];
  private readonly optimizer: AdamW;
  private readonly stepper: TrainStep;

  private constructor(
    private readonly o: FinetuneOptions,
    private readonly ctl: RunControl,
    private readonly model: LlamaModel,
    private readonly weights: Map<string, tf.Variable>,
    private readonly palettizer: Palettizer,
    private readonly data: TrainData,
    private readonly trainable: Map<string, tf.Variable>,
  ) {
    this.ckptPath = checkpointPath(o.out);
    this.logPath = join(o.out, 'log.jsonl');
    this.readEvery = Math.max(1, o.readEvery ?? DEFAULT_READ_EVERY);
    this.optimizer = new AdamW({ weightDecay: o.weightDecay });
    this.stepper = new TrainStep(model, trainable, this.optimizer, {
      clip: o.clip,
      graph: ctl.stepGraph !== false,
      log: ctl.log,
      palettizer,
      weights,
    });
  }

  /**
   * Loads the model and opens the data (at the checkpoint's position on --resume), restores the
   * checkpoint and starts the log. `linearWeights`: how many linear weights the model has.
   */
  static async open(
    o: FinetuneOptions,
    ctl: RunControl,
    palettizer: Palettizer,
    linearWeights: number,
  ): Promise<TrainingRun> {
    const { model, tokenizer } = loadLlama(o.model);
    const checkpoint = ctl.resume ? loadCheckpoint(checkpointPath(o.out)) : undefined;
    const data = await openTrainData(
      o.data,
      tokenizer,
      {
        batch: o.batch,
        seq: o.seq,
        seed: o.seed,
        holdoutChars: o.holdoutChars,
        packing: o.packing,
      },
      checkpoint?.dataPosition,
    );
    ctl.log(`data: ${data.description}`);

    const weights = model.getWeights();
    ctl.log(
      `palettizing ${palettizer.layers.size} of ${linearWeights} linear weights (${describeConfig(o.palettize)})`,
    );
    const trainable = trainables(o, weights, palettizer);
    const run = new TrainingRun(o, ctl, model, weights, palettizer, data, trainable);
    if (checkpoint) run.restore(checkpoint);
    run.startLog();
    return run;
  }

  /** The trained weights, the palettizer's and the optimizer's state and the history. */
  private restore(checkpoint: Checkpoint): void {
    for (const [name, w] of checkpoint.weights) {
      const target = this.trainable.get(name);
      if (!target)
        throw new StateError(`the checkpoint holds '${name}', which this run does not train`);
      const t = tf.tensor(w.data, w.shape);
      target.assign(t);
      t.dispose();
    }
    for (const [name, layer] of this.palettizer.layers) {
      const state = checkpoint.palettizer[name];
      if (state === undefined || !layer.setState)
        throw new StateError(
          `the checkpoint has no palettizer state for '${name}': it cannot resume this run exactly`,
        );
      layer.setState(state);
    }
    this.optimizer.setState(
      checkpoint.optimizer,
      new Map([...this.trainable].map(([n, v]) => [n, v.shape])),
    );
    this.history = checkpoint.history;
    this.start = checkpoint.step;
    this.ctl.log(`resumed from step ${this.start} (${this.ckptPath})`);
  }

  /** log.jsonl keeps only what the checkpoint covers: steps after it are redone. */
  private startLog(): void {
    writeFileSync(
      this.logPath,
      this.history.map((h) => `${JSON.stringify({ event: 'step', ...h })}\n`).join(''),
    );
  }

  /**
   * Trains to the last step, then writes the export if RunControl.exportTo asks for one (its size
   * report). Frees the model, the palettizer and the optimizer, whatever happens.
   */
  async train(): Promise<SizeReport | undefined> {
    const { o, ctl } = this;
    // the fused linear: DKM layers do not keep W̃ for the backward pass
    this.model.setLinear(this.palettizer.linear);
    this.t0 = performance.now();
    this.peakBytes = backendBytes();
    ctl.progress.start(o.steps, this.start);
    try {
      for (let step = this.start; step < o.steps; step++) {
        await this.step(step);
        // let timers and signals run between steps (the progress display; a cpu backend's reads
        // resolve as microtasks, so a training loop would otherwise never yield the event loop)
        await new Promise((resolve) => setImmediate(resolve));
      }
      return ctl.exportTo ? await this.exportTo(ctl.exportTo) : undefined;
    } catch (err) {
      for (const p of this.pending) tf.dispose([...p.losses, p.clip]);
      throw err;
    } finally {
      ctl.progress.stop();
      this.model.setLinear(null);
      this.stepper.dispose();
      this.palettizer.dispose();
      this.optimizer.dispose();
      this.model.dispose();
    }
  }

  /** Seconds since training started. */
  elapsedSeconds(): number {
    return (performance.now() - this.t0) / 1000;
  }

  /** One optimizer step, queued on the device; then the read-back and the checkpoint when due. */
  private async step(step: number): Promise<void> {
    const { o } = this;
    const lr = learningRate(step, {
      lr: o.lr,
      warmupSteps: o.warmup,
      totalSteps: o.steps,
      minRatio: o.minLrRatio,
    });
    // the true peak of the step (sampled after every kernel), not the bytes left after it
    const stepStart = backendBytes();
    const { result, peakExtraBytes } = await measurePeakBytes(async () => {
      if (o.checkpointing) {
        await this.palettizer.prepare(this.weights);
        return this.checkpointedStep(lr);
      }
      return this.accumulatedStep(lr); // TrainStep prepares the palettized layers
    });
    this.pending.push({ step: step + 1, lr, ...result, stepStart, peakExtraBytes });
    const last = step + 1 === o.steps;
    const saveNow = o.saveEvery > 0 && ((step + 1) % o.saveEvery === 0 || last);
    if (saveNow || last || this.pending.length >= this.readEvery) await this.drain();
    if (saveNow) await this.save(step + 1);
  }

  /**
   * --checkpointing: one batch, the backward pass one layer at a time, each layer updated (and
   * clipped by its own norm) as its gradients arrive.
   */
  private async checkpointedStep(lr: number): Promise<StepResult> {
    const { o, trainable, optimizer } = this;
    const b = this.data.next();
    optimizer.beginStep();
    let squares = tf.scalar(0);
    try {
      const loss = await layerwiseStep(this.model, b.inputIds, b.labels, {
        attentionMask: b.attentionMask,
        segmentIds: b.segmentIds,
        positionIds: b.positionIds,
        trainable,
        onGradients: (_group, grads) => {
          // each group clipped by its own norm, on the device (nothing read back)
          const clip = globalNormAndClip(Object.fromEntries(grads), o.clip);
          optimizer.update(trainable, Object.fromEntries(grads), lr, clip);
          const next = tf.tidy(() => squares.add(clip.slice(0, 1).square().sum()));
          tf.dispose([squares, clip]);
          squares = next as tf.Scalar;
        },
      });
      const clip = tf.tidy(() => tf.concat([squares.sqrt().reshape([1]), tf.ones([1])]));
      return { losses: [tf.scalar(loss)], tokens: b.tokens, clip: clip as tf.Tensor1D };
    } finally {
      squares.dispose();
    }
  }

  /** `gradAccum` micro-batches, their mean gradient clipped by its global norm, one update. */
  private async accumulatedStep(lr: number): Promise<StepResult> {
    const batches = Array.from({ length: this.o.gradAccum }, () => this.data.next());
    const { losses, clip } = await this.stepper.run(batches, lr);
    return { losses, tokens: batches.reduce((a, b) => a + b.tokens, 0), clip };
  }

  /**
   * Reads the queued steps' losses and gradient norms back: the divergence check, the history, the
   * log and the progress bar.
   */
  private async drain(): Promise<void> {
    const { o, ctl, pending } = this;
    const read = await Promise.all(
      pending.map(async (p) => ({
        losses: await Promise.all(p.losses.map(async (l) => (await l.data())[0])),
        norm: (await p.clip.data())[0],
      })),
    );
    const items = pending.splice(0);
    for (const p of items) tf.dispose([...p.losses, p.clip]);
    items.forEach((p, i) => {
      this.peakBytes = Math.max(this.peakBytes, p.stepStart + p.peakExtraBytes);
      this.lastLoss = read[i].losses.reduce((a, b) => a + b, 0) / o.gradAccum;
      const gradNorm = read[i].norm;
      if (!Number.isFinite(this.lastLoss))
        throw new NonFiniteError(divergedMessage('loss', this.lastLoss, p.step, o.out));
      if (!Number.isFinite(gradNorm))
        throw new NonFiniteError(divergedMessage('gradient norm', gradNorm, p.step, o.out));
      this.tokensSeen += p.tokens;
      const record = { step: p.step, loss: this.lastLoss, lr: p.lr, tokens: p.tokens };
      this.history.push(record);
      const seconds = this.elapsedSeconds();
      appendFileSync(
        this.logPath,
        // bytes: allocated at the step's end; peakBytes: the highest allocation within the step
        `${JSON.stringify({ event: 'step', ...record, gradNorm, seconds, bytes: backendBytes(), peakBytes: p.stepStart + p.peakExtraBytes })}\n`,
      );
      ctl.progress.update(p.step, {
        loss: this.lastLoss,
        tokensPerSecond: this.tokensSeen / seconds,
        bytes: backendBytes(),
      });
    });
  }

  /** checkpoint.safetensors (atomically): weights, optimizer, palettizer, data position, history. */
  private async save(step: number): Promise<void> {
    const saved = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, v] of this.trainable)
      saved.set(name, { shape: v.shape, data: (await v.data()) as Float32Array });
    const states: Record<string, unknown> = {};
    for (const [name, layer] of this.palettizer.layers) {
      if (!layer.getState)
        throw new StateError(`palettized layer '${name}' cannot save its state for a checkpoint`);
      await layer.settled?.();
      states[name] = layer.getState();
    }
    saveCheckpoint(this.ckptPath, {
      step,
      weights: saved,
      optimizer: await this.optimizer.getState(),
      palettizer: states,
      dataPosition: this.data.position(),
      history: this.history,
    });
    appendFileSync(this.logPath, `${JSON.stringify({ event: 'checkpoint', step })}\n`);
  }

  /** The hard-assigned clustering of the weights as they are now, as `edkm export` writes it. */
  private async exportTo(dir: string): Promise<SizeReport> {
    const { o, weights, ctl } = this;
    const t0 = performance.now();
    const seconds = () => ((performance.now() - t0) / 1000).toFixed(1);
    ctl.log(`export: hard-assigning ${this.palettizer.layers.size} palettized weights`);
    await this.palettizer.prepare(weights);
    const palettes = await this.palettizer.export(weights);
    const dense = new Map<string, DenseWeight>();
    for (const [name, v] of weights)
      if (!palettes.has(name))
        dense.set(name, { shape: v.shape, data: (await v.data()) as Float32Array });
    ctl.log(`export: assigned in ${seconds()} s; writing ${resolve(dir)}`);
    const report = writePalettized(resolve(dir), dense, palettes, {
      copyFrom: o.model,
      metadata: {
        source: 'edkm finetune',
        step: String(o.steps),
        palettize: JSON.stringify(o.palettize),
      },
    });
    ctl.log(`export: written in ${seconds()} s`);
    return report;
  }
}

/**
 * A NaN/infinite loss or gradient norm: what to do next. The check runs before the step's
 * checkpoint is written, so the run's last checkpoint (if any) is still the one before it.
 */
function divergedMessage(what: string, value: number, step: number, runDir: string): string {
  const kept = existsSync(checkpointPath(runDir))
    ? `; the last checkpoint in ${runDir} is kept (--resume continues it with the same settings: start a new --out to change --lr)`
    : '';
  return `the ${what} is ${value} at step ${step}: training diverged. Lower --lr (or raise --warmup, set --clip) and check --data for empty or broken examples${kept}`;
}

/** Model weights (embeddings only with trainEmbeddings) and the palettizing methods' variables. */
function trainables(
  o: FinetuneOptions,
  weights: Map<string, tf.Variable>,
  palettizer: Palettizer,
): Map<string, tf.Variable> {
  const trainable = new Map<string, tf.Variable>();
  for (const [name, w] of weights)
    if (o.trainEmbeddings || name !== 'model.embed_tokens.weight') trainable.set(name, w);
  for (const [layerName, layer] of palettizer.layers)
    (layer.variables?.() ?? []).forEach((v, i) => trainable.set(`${layerName}#var${i}`, v));
  return trainable;
}
