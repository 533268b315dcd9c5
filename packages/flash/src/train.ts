import { join } from 'node:path';
import { InvalidArgumentError, assertIntInRange, tf } from '@edkm/core';
import { type FlashModel, openFlash } from './engine';
import type { FlashLayout } from './layout';
import { cholesky, invertLower, matmul, symmetricEigen } from './linalg';
import { type LowRankLayer, LowRankPredictor, resolveTopK } from './predictor';

export interface CollectOptions {
  /** Tokens per forward pass (default 64: attention's cost grows with its square). */
  window?: number;
  /** Training tokens at most (default 8,192). */
  maxTokens?: number;
  /** Tokens after the training ones, kept out of the fit, for measuring recall (default 512). */
  heldOutTokens?: number;
}

/** What the fit needs of the training text: per layer, the FFN inputs' second moment. */
export interface FfnActivations {
  tokens: number;
  /** Per layer Σ_t x_t x_tᵀ [H, H] over the training tokens. */
  moments: Float64Array[];
  /** Per layer, the held-out FFN inputs [n, H]. */
  heldOut: Float32Array[];
  heldOutTokens: number;
}

/**
 * Runs `ids` (real text) through `flash` — which should compute every neuron, predictor 'all' —
 * and keeps each layer's FFN-input second moment over the first tokens, and the FFN inputs of
 * the held-out tokens after them.
 */
export async function collectFfnInputs(
  flash: FlashModel,
  ids: number[],
  opts: CollectOptions = {},
): Promise<FfnActivations> {
  const c = flash.config;
  const H = c.hiddenSize;
  const L = c.numHiddenLayers;
  const window = assertIntInRange('window', opts.window ?? 64, 1, c.maxPositionEmbeddings);
  const heldOutTokens = Math.min(opts.heldOutTokens ?? 512, Math.floor(ids.length / 2));
  const tokens = Math.min(opts.maxTokens ?? 8192, ids.length - heldOutTokens);
  if (tokens < H)
    throw new InvalidArgumentError(
      `${tokens} training tokens are too few to fit a predictor of a ${H}-wide model`,
    );
  const moments = Array.from({ length: L }, () => new Float64Array(H * H));
  const heldOut: Float32Array[][] = Array.from({ length: L }, () => []);
  let training = true;
  const previous = flash.onFfnInput;
  flash.onFfnInput = (l, x) => {
    if (!training) {
      heldOut[l].push(x.dataSync() as Float32Array);
      return;
    }
    const xtx = tf.tidy(() => tf.matMul(x, x, true, false));
    const data = xtx.dataSync();
    xtx.dispose();
    const m = moments[l];
    for (let i = 0; i < m.length; i++) m[i] += data[i];
  };
  try {
    const run = async (from: number, to: number) => {
      for (let at = from; at < to; at += window)
        (await flash.forward(ids.slice(at, Math.min(to, at + window)))).dispose();
    };
    await run(0, tokens);
    training = false;
    await run(tokens, tokens + heldOutTokens);
  } finally {
    flash.onFfnInput = previous;
  }
  const concat = (parts: Float32Array[]) => {
    const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
  return { tokens, moments, heldOut: heldOut.map(concat), heldOutTokens };
}

export interface FitOptions {
  /** Rank of each layer's predictor (default 32). */
  rank?: number;
  /** Ridge added to the second moment, relative to its mean eigenvalue (default 1e-4). */
  ridge?: number;
}

/**
 * Fits the low-rank predictor of every FFN layer from collected activations. With x the FFN input,
 * Σ = E[x xᵀ] = L Lᵀ and W = [W_gate; W_up], the rank-r map minimising E‖W x − C P x‖² over the
 * training tokens is C P = W L V_r V_rᵀ L⁻¹, V_r the top-r right singular vectors of W L:
 * P = V_rᵀ L⁻¹ [r, H], C = W L V_r. The predictor scores neuron i by |silu(ĝ_i) · û_i|. A closed
 * form (no learning rate, no epochs); its cost is r·(H + 2I) multiply-adds per token and layer.
 */
export function fitLowRankPredictor(
  layout: FlashLayout,
  activations: FfnActivations,
  opts: FitOptions = {},
): LowRankPredictor {
  const { hiddenSize: H, intermediateSize: I, numLayers: L } = layout.manifest;
  const rank = assertIntInRange('rank', opts.rank ?? 32, 1, H);
  const outputs = 2 * I;
  const layers: LowRankLayer[] = [];
  for (let l = 0; l < L; l++) {
    const sigma = activations.moments[l].map((v) => v / activations.tokens);
    let trace = 0;
    for (let i = 0; i < H; i++) trace += sigma[i * H + i];
    for (let i = 0; i < H; i++) sigma[i * H + i] += (opts.ridge ?? 1e-4) * (trace / H);
    const chol = cholesky(sigma, H);
    const weights = layout.readLayer(l);
    const w = new Float32Array(outputs * H);
    w.set(weights.gate);
    w.set(weights.up, I * H);
    const [wl, gramWL] = tf.tidy(() => {
      const m = tf.matMul(
        tf.tensor2d(w, [outputs, H]),
        tf.tensor2d(Float32Array.from(chol), [H, H]),
      );
      return [
        m.dataSync() as Float32Array,
        tf.matMul(m, m, true, false).dataSync() as Float32Array,
      ];
    });
    const { vectors } = symmetricEigen(Float64Array.from(gramWL), H);
    const top = new Float64Array(H * rank); // V_r [H, r]
    const topT = new Float64Array(rank * H);
    for (let i = 0; i < H; i++)
      for (let j = 0; j < rank; j++) {
        top[i * rank + j] = vectors[i * H + j];
        topT[j * H + i] = vectors[i * H + j];
      }
    const c = matmul(Float64Array.from(wl), top, outputs, H, rank);
    layers.push({
      project: Float32Array.from(matmul(topT, invertLower(chol, H), rank, H, H)),
      gate: Float32Array.from(c.subarray(0, I * rank)),
      up: Float32Array.from(c.subarray(I * rank)),
    });
  }
  return new LowRankPredictor(layers, H);
}

export interface PredictorQuality {
  topK: number;
  /** Per layer, on held-out tokens: |predicted top-k ∩ true top-k| / k. */
  recall: number[];
  /** Per layer: Σ|a| over the predicted top-k / Σ|a| over the true top-k (1 = the oracle's). */
  massCaptured: number[];
}

/** How well `predictor` finds each held-out token's top-k neurons by |silu(gate)·up|. */
export function predictorQuality(
  layout: FlashLayout,
  predictor: LowRankPredictor,
  activations: FfnActivations,
  topK = 0.25,
): PredictorQuality {
  const { hiddenSize: H, intermediateSize: I, numLayers: L } = layout.manifest;
  const k = resolveTopK(topK, I);
  const n = activations.heldOut[0].length / H;
  const recall: number[] = [];
  const massCaptured: number[] = [];
  for (let l = 0; l < L; l++) {
    const w = layout.readLayer(l);
    const [truth, guess] = tf.tidy(() => {
      const x = tf.tensor2d(activations.heldOut[l], [n, H]);
      const g = tf.matMul(x, tf.tensor2d(w.gate, [I, H]), false, true);
      const u = tf.matMul(x, tf.tensor2d(w.up, [I, H]), false, true);
      const a = tf.abs(tf.mul(tf.mul(g, tf.sigmoid(g)), u));
      return [a.dataSync() as Float32Array, predictor.scores(l, x).dataSync() as Float32Array];
    });
    const r = topKAgreement(truth, guess, n, I, k);
    recall.push(r.recall);
    massCaptured.push(r.mass);
  }
  return { topK: k, recall, massCaptured };
}

/** Mean top-k overlap and captured activation mass of `guess` against `truth`, [n, I] each. */
export function topKAgreement(
  truth: Float32Array,
  guess: Float32Array,
  n: number,
  I: number,
  k: number,
): { recall: number; mass: number } {
  let recall = 0;
  let mass = 0;
  const cut = (row: Float32Array) => {
    const sorted = Float32Array.from(row).sort();
    return sorted[I - k];
  };
  for (let t = 0; t < n; t++) {
    const tr = truth.subarray(t * I, (t + 1) * I);
    const gs = guess.subarray(t * I, (t + 1) * I);
    const trueCut = cut(tr);
    const guessCut = cut(gs);
    let both = 0;
    let picked = 0;
    let best = 0;
    let taken = 0;
    for (let i = 0; i < I; i++) {
      const inTruth = tr[i] >= trueCut;
      const inGuess = gs[i] >= guessCut;
      if (inTruth) best += tr[i];
      if (inGuess) {
        picked += tr[i];
        taken++;
        if (inTruth) both++;
      }
    }
    recall += both / Math.max(k, taken);
    mass += best > 0 ? picked / best : 1;
  }
  return { recall: recall / n, mass: mass / n };
}

export interface TrainOptions extends CollectOptions, FitOptions {
  /** Where to save (default predictor.safetensors in the layout folder, which 'low-rank' loads). */
  out?: string;
  /** Neurons per token for the quality report (default 0.25). */
  qualityTopK?: number;
}

/**
 * Trains and saves the predictor of a layout from `text` (e.g. the training part of
 * tinyshakespeare): collect activations with every neuron computed, fit, report held-out recall.
 */
export async function trainPredictor(
  layoutDir: string,
  text: string,
  opts: TrainOptions = {},
): Promise<{ path: string; quality: PredictorQuality; tokens: number; seconds: number }> {
  const t0 = performance.now();
  const flash = await openFlash(layoutDir, { predictor: 'all' });
  try {
    if (!flash.tokenizer) throw new InvalidArgumentError(`${layoutDir} has no tokenizer.json`);
    const activations = await collectFfnInputs(flash, flash.tokenizer.encode(text), opts);
    const predictor = fitLowRankPredictor(flash.layout, activations, opts);
    const quality = predictorQuality(flash.layout, predictor, activations, opts.qualityTopK);
    const path = opts.out ?? join(layoutDir, 'predictor.safetensors');
    predictor.save(path, {
      tokens: String(activations.tokens),
      recall: JSON.stringify(quality.recall.map((r) => Number(r.toFixed(4)))),
    });
    predictor.dispose();
    return { path, quality, tokens: activations.tokens, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await flash.close();
  }
}
