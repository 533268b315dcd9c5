import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import {
  InvalidArgumentError,
  NonFiniteError,
  StateError,
  backendBytes,
  measurePeakBytes,
  tf,
  useBackend,
} from '@edkm/core';
import { Palettizer, type PalettizerConfig, parsePalettizerConfig } from '@edkm/dkm';
import '@edkm/jlcm'; // registers method: 'jlcm' for palettizer configs
import { expectedWeightShapes, layerwiseStep, loadLlama, parseLlamaConfig } from '@edkm/llama';
import { Marshaler } from '@edkm/marshal';
import { type DenseWeight, type SizeReport, writePalettized } from '@edkm/palettized';
import { describeSelection } from './backend';
import { checkpointPath, loadCheckpoint, saveCheckpoint } from './checkpoint';
import { openTrainData } from './data';
import { checkMemoryPlan, formatMemoryPlan, planMemory } from './memory-plan';
import { AdamW, globalNormAndClip, learningRate } from './optim';
import { writeLossPlot } from './plot';
import type { Progress } from './progress';

/** Everything that decides a fine-tuning run (stored as run.json; --resume must match it). */
export interface FinetuneOptions {
  model: string;
  data: string;
  out: string;
  /** Palettizer config (coremltools style); default: every decoder linear layer at `bits`. */
  palettize: PalettizerConfig;
  steps: number;
  batch: number;
  seq: number;
  gradAccum: number;
  lr: number;
  warmup: number;
  minLrRatio: number;
  weightDecay: number;
  clip: number;
  seed: number;
  saveEvery: number;
  holdoutChars: number;
  packing: boolean;
  trainEmbeddings: boolean;
  /**
   * eDKM's memory switches (the paper's ablation): `marshal` keeps the index lists saved for the
   * backward pass in host memory (@edkm/marshal); `shards` splits each index list; `indexLists`
   * uses index lists instead of reading each weight's table row from its own 16-bit code (implied
   * by the other two).
   */
  marshal?: boolean;
  shards?: number;
  indexLists?: boolean;
  /**
   * Read the loss and gradient norm back every this many steps (default 10; 1 = every step): the
   * log, the progress bar and the divergence check lag by up to that many steps.
   */
  readEvery?: number;
  /**
   * Gradient checkpointing per decoder layer with layer-wise updates (@edkm/llama's
   * layerwiseStep): the forward pass keeps each layer's input only, the backward pass recomputes
   * one layer at a time and AdamW updates that layer and frees its gradients before the next.
   * --clip then clips each layer's gradient (the head's, each decoder layer's) by its own norm.
   */
  checkpointing?: boolean;
}

const DEFAULT_READ_EVERY = 10;

export interface RunControl {
  backend: string;
  resume: boolean;
  progress: Progress;
  log: (line: string) => void;
  /** Device bytes to plan against (default: host memory on cpu, unknown on webgpu). */
  deviceMemory?: number;
  /**
   * Writes the palettized export of the trained model here at the end, from memory (no
   * checkpoint needed: a 7B model's checkpoint with AdamW's moments is 80 GB).
   */
  exportTo?: string;
}

export interface FinetuneResult {
  steps: number;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  finalLoss: number;
  peakBytes: number;
  runDir: string;
  backend: string;
  /** The size report of the export written to RunControl.exportTo. */
  exportReport?: SizeReport;
}

/** The default per-layer config: DKM on every decoder linear layer; embeddings and LM head 16-bit. */
export function defaultPalettizeConfig(bits: number): PalettizerConfig {
  return { global: { bits }, byName: { 'lm_head.weight': null } };
}

export function readPalettizeConfig(path: string): PalettizerConfig {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`--config ${path}: ${(err as Error).message}`);
  }
  return parsePalettizerConfig(json, path);
}

export function validateOptions(o: FinetuneOptions): void {
  const positiveInts: (keyof FinetuneOptions)[] = ['steps', 'batch', 'seq', 'gradAccum'];
  if (!(Number.isSafeInteger(o.saveEvery) && o.saveEvery >= 0))
    throw new InvalidArgumentError(
      `--save-every must be a non-negative integer (0: no checkpoints), got ${o.saveEvery}`,
    );
  for (const k of positiveInts)
    if (!(Number.isSafeInteger(o[k]) && (o[k] as number) > 0))
      throw new InvalidArgumentError(`--${kebab(k)} must be a positive integer, got ${o[k]}`);
  const nonNegative: (keyof FinetuneOptions)[] = ['warmup', 'holdoutChars', 'seed'];
  for (const k of nonNegative)
    if (!(Number.isSafeInteger(o[k]) && (o[k] as number) >= 0))
      throw new InvalidArgumentError(`--${kebab(k)} must be a non-negative integer, got ${o[k]}`);
  if (!(o.lr > 0 && o.lr < 1))
    throw new InvalidArgumentError(`--lr must be in (0, 1), got ${o.lr}`);
  if (!(o.weightDecay >= 0)) throw new InvalidArgumentError('--weight-decay must be ≥ 0');
  if (!(o.clip >= 0)) throw new InvalidArgumentError('--clip must be ≥ 0 (0 = off)');
  if (!(o.minLrRatio >= 0 && o.minLrRatio <= 1))
    throw new InvalidArgumentError('--min-lr-ratio must be in [0, 1]');
  if (o.readEvery !== undefined && !(Number.isSafeInteger(o.readEvery) && o.readEvery > 0))
    throw new InvalidArgumentError(`--read-every must be a positive integer, got ${o.readEvery}`);
  if (o.seq < 2) throw new InvalidArgumentError('--seq must be at least 2');
  if (!existsSync(join(o.model, 'config.json')))
    throw new InvalidArgumentError(`--model ${o.model} is not a model folder (no config.json)`);
  if (!existsSync(o.data)) throw new InvalidArgumentError(`--data ${o.data} does not exist`);
  if (o.checkpointing && o.gradAccum > 1)
    throw new InvalidArgumentError(
      '--checkpointing updates each layer during the backward pass: it cannot accumulate gradients (--grad-accum 1)',
    );
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function runFile(runDir: string): string {
  return join(runDir, 'run.json');
}

/** The stored options of a run folder. */
export function readRun(runDir: string): FinetuneOptions {
  const path = runFile(runDir);
  if (!existsSync(path))
    throw new InvalidArgumentError(`${runDir} is not a fine-tuning run (no run.json)`);
  return JSON.parse(readFileSync(path, 'utf8')).options as FinetuneOptions;
}

/** Options that must not change on --resume (anything that changes the computation). */
function resumeMismatches(stored: FinetuneOptions, given: FinetuneOptions): string[] {
  const out: string[] = [];
  for (const key of Object.keys(stored) as (keyof FinetuneOptions)[]) {
    // the output folder, the checkpoint interval and the step count (to train on) may change
    if (key === 'out' || key === 'saveEvery' || key === 'steps' || key === 'readEvery') continue;
    const a = JSON.stringify(stored[key]);
    const b = JSON.stringify(given[key]);
    if (a !== b) out.push(`${key}: run ${a}, given ${b}`);
  }
  return out;
}

/**
 * Fine-tunes a LLaMA model while palettizing its linear layers (DKM/eDKM or JLCM per the config),
 * with AdamW, warm-up + cosine schedule, gradient accumulation and clipping. Writes to the run
 * folder: run.json, checkpoint.safetensors (every `saveEvery` steps and at the end, atomically),
 * log.jsonl (one line per step) and loss.svg. With `resume`, continues from the checkpoint
 * exactly: same data position, optimizer state and palettizer state.
 */
export async function finetune(opts: FinetuneOptions, ctl: RunControl): Promise<FinetuneResult> {
  const o = {
    ...opts,
    model: resolve(opts.model),
    data: resolve(opts.data),
    out: resolve(opts.out),
  };
  validateOptions(o);
  const ckptPath = checkpointPath(o.out);
  if (ctl.resume) {
    const stored = readRun(o.out);
    const diff = resumeMismatches(stored, o);
    if (diff.length)
      throw new InvalidArgumentError(
        `--resume continues the run in ${o.out} with its own settings; these differ:\n  ${diff.join('\n  ')}`,
      );
    if (!existsSync(ckptPath))
      throw new InvalidArgumentError(
        `--resume: ${o.out} has no checkpoint yet; start it again without --resume`,
      );
  } else if (existsSync(ckptPath)) {
    throw new InvalidArgumentError(
      `${o.out} already holds a run (checkpoint.safetensors): pass --resume to continue it, or choose another --out`,
    );
  }
  const selection = await useBackend(ctl.backend);
  ctl.log(describeSelection(selection));
  mkdirSync(o.out, { recursive: true });
  if (!ctl.resume)
    writeFileSync(runFile(o.out), `${JSON.stringify({ version: 1, options: o }, null, 2)}\n`);

  // the palettizer and the memory plan come from config.json alone: a run that cannot fit is
  // refused before the weights are loaded
  const config = parseLlamaConfig(
    JSON.parse(readFileSync(join(o.model, 'config.json'), 'utf8')),
    join(o.model, 'config.json'),
  );
  const shapes = expectedWeightShapes(config);
  const linear = new Map(
    [...shapes]
      .filter(([n]) => n.endsWith('_proj.weight') || n === 'lm_head.weight')
      .map(([n, shape]) => [n, shape as [number, number]]),
  );
  const marshal = o.marshal ? new Marshaler({ policy: 'always' }) : undefined;
  const palettizer = new Palettizer(linear, o.palettize, {
    marshal,
    shards: o.shards,
    tables: o.indexLists ? 'index' : undefined,
  });
  if (palettizer.layers.size === 0)
    throw new InvalidArgumentError('the palettizer config clusters no weight of this model');
  const plan = planMemory({
    config,
    batch: o.batch,
    seq: o.seq,
    trained: new Set(
      [...shapes.keys()].filter((n) => o.trainEmbeddings || n !== 'model.embed_tokens.weight'),
    ),
    palettized: new Set(palettizer.layers.keys()),
    checkpointing: Boolean(o.checkpointing),
  });
  const deviceMemory = ctl.deviceMemory ?? (selection.plugin === 'cpu' ? totalmem() : undefined);
  ctl.log(formatMemoryPlan(plan, deviceMemory));
  checkMemoryPlan(plan, deviceMemory, Boolean(o.checkpointing));

  const { model, tokenizer } = loadLlama(o.model);
  const checkpoint = ctl.resume ? loadCheckpoint(ckptPath) : undefined;
  const data = await openTrainData(
    o.data,
    tokenizer,
    { batch: o.batch, seq: o.seq, seed: o.seed, holdoutChars: o.holdoutChars, packing: o.packing },
    checkpoint?.dataPosition,
  );
  ctl.log(`data: ${data.description}`);

  const weights = model.getWeights();
  ctl.log(
    `palettizing ${palettizer.layers.size} of ${linear.size} linear weights (${describeConfig(o.palettize)})`,
  );

  // trainables: model weights (embeddings only with trainEmbeddings) and the methods' variables
  const trainable = new Map<string, tf.Variable>();
  for (const [name, w] of weights)
    if (o.trainEmbeddings || name !== 'model.embed_tokens.weight') trainable.set(name, w);
  for (const [layerName, layer] of palettizer.layers)
    (layer.variables?.() ?? []).forEach((v, i) => trainable.set(`${layerName}#var${i}`, v));

  const optimizer = new AdamW({ weightDecay: o.weightDecay });
  let history: { step: number; loss: number; lr: number; tokens: number }[] = [];
  let start = 0;
  if (checkpoint) {
    for (const [name, w] of checkpoint.weights) {
      const target = trainable.get(name);
      if (!target)
        throw new StateError(`the checkpoint holds '${name}', which this run does not train`);
      const t = tf.tensor(w.data, w.shape);
      target.assign(t);
      t.dispose();
    }
    for (const [name, layer] of palettizer.layers) {
      const state = checkpoint.palettizer[name];
      if (state === undefined || !layer.setState)
        throw new StateError(
          `the checkpoint has no palettizer state for '${name}': it cannot resume this run exactly`,
        );
      layer.setState(state);
    }
    optimizer.setState(checkpoint.optimizer, new Map([...trainable].map(([n, v]) => [n, v.shape])));
    history = checkpoint.history;
    start = checkpoint.step;
    ctl.log(`resumed from step ${start} (${ckptPath})`);
  }
  const logPath = join(o.out, 'log.jsonl');
  // the log keeps only what the checkpoint covers: steps after it are redone
  writeFileSync(
    logPath,
    history.map((h) => `${JSON.stringify({ event: 'step', ...h })}\n`).join(''),
  );

  // the fused linear: DKM layers do not keep W̃ for the backward pass
  model.setLinear(palettizer.linear);
  const t0 = performance.now();
  let tokensSeen = 0;
  let peakBytes = backendBytes();
  let lastLoss = Number.NaN;
  let exportReport: SizeReport | undefined;
  ctl.progress.start(o.steps, start);
  const save = async (step: number) => {
    const saved = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, v] of trainable)
      saved.set(name, { shape: v.shape, data: (await v.data()) as Float32Array });
    const states: Record<string, unknown> = {};
    for (const [name, layer] of palettizer.layers) {
      if (!layer.getState)
        throw new StateError(`palettized layer '${name}' cannot save its state for a checkpoint`);
      await layer.settled?.();
      states[name] = layer.getState();
    }
    saveCheckpoint(ckptPath, {
      step,
      weights: saved,
      optimizer: await optimizer.getState(),
      palettizer: states,
      dataPosition: data.position(),
      history,
    });
    appendFileSync(logPath, `${JSON.stringify({ event: 'checkpoint', step })}\n`);
  };
  // the losses and gradient norms stay on the device until `readEvery` steps have queued (or a
  // checkpoint is due): the host keeps queueing work instead of waiting for each step's loss, and
  // the log, the progress bar and the divergence check lag by at most that many steps
  const readEvery = Math.max(1, o.readEvery ?? DEFAULT_READ_EVERY);
  const pending: {
    step: number;
    lr: number;
    tokens: number;
    losses: tf.Scalar[];
    clip: tf.Tensor1D;
    stepStart: number;
    peakExtraBytes: number;
  }[] = [];
  const drain = async () => {
    const read = await Promise.all(
      pending.map(async (p) => ({
        losses: await Promise.all(p.losses.map(async (l) => (await l.data())[0])),
        norm: (await p.clip.data())[0],
      })),
    );
    const items = pending.splice(0);
    for (const p of items) tf.dispose([...p.losses, p.clip]);
    items.forEach((p, i) => {
      peakBytes = Math.max(peakBytes, p.stepStart + p.peakExtraBytes);
      lastLoss = read[i].losses.reduce((a, b) => a + b, 0) / o.gradAccum;
      const gradNorm = read[i].norm;
      if (!Number.isFinite(lastLoss))
        throw new NonFiniteError(divergedMessage('loss', lastLoss, p.step, o.out));
      if (!Number.isFinite(gradNorm))
        throw new NonFiniteError(divergedMessage('gradient norm', gradNorm, p.step, o.out));
      tokensSeen += p.tokens;
      const record = { step: p.step, loss: lastLoss, lr: p.lr, tokens: p.tokens };
      history.push(record);
      const seconds = (performance.now() - t0) / 1000;
      appendFileSync(
        logPath,
        `${JSON.stringify({ event: 'step', ...record, gradNorm, seconds, bytes: backendBytes() })}\n`,
      );
      ctl.progress.update(p.step, {
        loss: lastLoss,
        tokensPerSecond: tokensSeen / seconds,
        bytes: backendBytes(),
      });
    });
  };
  try {
    for (let step = start; step < o.steps; step++) {
      const lr = learningRate(step, {
        lr: o.lr,
        warmupSteps: o.warmup,
        totalSteps: o.steps,
        minRatio: o.minLrRatio,
      });
      // the true peak of the step (sampled after every kernel), not the bytes left after it
      const stepStart = backendBytes();
      const { result: stepResult, peakExtraBytes } = await measurePeakBytes(async () => {
        await palettizer.prepare(weights);
        if (o.checkpointing) {
          const b = data.next();
          optimizer.beginStep();
          let squares = tf.scalar(0);
          try {
            const loss = await layerwiseStep(model, b.inputIds, b.labels, {
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
        const losses: tf.Scalar[] = [];
        let tokens = 0;
        let accumulated: Record<string, tf.Tensor> | undefined;
        const names = [...trainable.keys()];
        const vars = names.map((n) => trainable.get(n)!);
        for (let micro = 0; micro < o.gradAccum; micro++) {
          const b = data.next();
          const { value, grads } = tf.variableGrads(
            () =>
              model.loss(b.inputIds, b.labels, {
                attentionMask: b.attentionMask,
                segmentIds: b.segmentIds,
                positionIds: b.positionIds,
              }),
            vars,
          );
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
          losses.push(value);
          tokens += b.tokens;
        }
        const grads = accumulated!;
        if (o.gradAccum > 1)
          for (const n of names) {
            const mean = grads[n].div(o.gradAccum);
            grads[n].dispose();
            grads[n] = mean;
          }
        // the global norm and the clip factor stay on the device (no read-back in the step)
        const clip = globalNormAndClip(grads, o.clip);
        optimizer.apply(trainable, grads, lr, clip);
        tf.dispose(Object.values(grads));
        return { losses, tokens, clip };
      });
      pending.push({ step: step + 1, lr, ...stepResult, stepStart, peakExtraBytes });
      const last = step + 1 === o.steps;
      const saveNow = o.saveEvery > 0 && ((step + 1) % o.saveEvery === 0 || last);
      if (saveNow || last || pending.length >= readEvery) await drain();
      if (saveNow) await save(step + 1);
      // let timers and signals run between steps (the progress display; a cpu backend's reads
      // resolve as microtasks, so a training loop would otherwise never yield the event loop)
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (ctl.exportTo) {
      // the hard-assigned clustering of the weights as they are now, as `edkm export` writes it
      await palettizer.prepare(weights);
      const palettes = await palettizer.export(weights);
      const dense = new Map<string, DenseWeight>();
      for (const [name, v] of weights)
        if (!palettes.has(name))
          dense.set(name, { shape: v.shape, data: (await v.data()) as Float32Array });
      exportReport = writePalettized(resolve(ctl.exportTo), dense, palettes, {
        copyFrom: o.model,
        metadata: {
          source: 'edkm finetune',
          step: String(o.steps),
          palettize: JSON.stringify(o.palettize),
        },
      });
    }
  } catch (err) {
    for (const p of pending) tf.dispose([...p.losses, p.clip]);
    throw err;
  } finally {
    ctl.progress.stop();
    model.setLinear(null);
    palettizer.dispose();
    optimizer.dispose();
    model.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  await writeLossPlot(
    join(o.out, 'loss.svg'),
    history.map((h) => ({ step: h.step, loss: h.loss, series: 'train' })),
    `palettized fine-tuning (${describeConfig(o.palettize)})`,
  );
  return {
    steps: o.steps - start,
    tokens: tokensSeen,
    seconds,
    tokensPerSecond: tokensSeen / seconds,
    finalLoss: lastLoss,
    peakBytes,
    runDir: o.out,
    backend: selection.description,
    exportReport,
  };
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

export function describeConfig(c: PalettizerConfig): string {
  const g = c.global as Record<string, unknown> | null | undefined;
  const head = g ? `${g.method ?? 'dkm'} ${g.bits ?? 4}-bit` : 'no global setting';
  const overrides = Object.keys(c.byName ?? {}).length;
  return overrides ? `${head}, ${overrides} override${overrides > 1 ? 's' : ''}` : head;
}
