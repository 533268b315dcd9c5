import { InvalidArgumentError, tf } from '@edkm/core';
import type { ForwardOptions, LlamaModel } from './model';

export interface LayerwiseStepOptions extends Omit<ForwardOptions, 'cache'> {
  /**
   * The variables to differentiate, by name. Decoder-layer variables are recognised by their
   * `model.layers.N.` prefix (a palettizer's own variables may be named `<weight name>#...`);
   * `model.norm.weight` and `lm_head.weight` belong to the head, `model.embed_tokens.weight` to the
   * embeddings (to the head as well when tied).
   */
  trainable: Map<string, tf.Variable>;
  /**
   * Receives each group's gradients as soon as they are complete — the head first, then the
   * decoder layers from the last to the first, then the embeddings — and updates those variables
   * (the next group's backward pass no longer reads them). The gradients are disposed after it
   * returns.
   */
  onGradients: (group: string, grads: Map<string, tf.Tensor>) => void | Promise<void>;
}

/**
 * One training step with gradient checkpointing per decoder layer: the forward pass keeps only each
 * layer's input hidden states (B·T·hidden floats per layer); the backward pass recomputes one
 * layer at a time under the tape, takes the vector-Jacobian product with the gradient that
 * reaches its output, hands that layer's weight gradients to `onGradients` and frees them before
 * the next layer. Peak memory is the weights, the kept hidden states, one layer's activations and
 * one layer's gradients (plus the logits) instead of every layer's activations and every weight's
 * gradient. The same loss as model.loss(); returns its value.
 */
export async function layerwiseStep(
  model: LlamaModel,
  inputIds: number[][],
  labels: number[][],
  opts: LayerwiseStepOptions,
): Promise<number> {
  const c = model.config;
  const targets = model.lossTargets(inputIds, labels);
  const B = inputIds.length;
  const T = inputIds[0].length;
  const groups = groupVariables(opts.trainable, c.numHiddenLayers, c.tieWordEmbeddings);
  const ctx = model.layerContext(B, T, opts);
  const ids = tf.tensor2d(inputIds, [B, T], 'int32');
  // forward without a tape: only each layer's input is kept
  const inputs: tf.Tensor[] = [tf.tidy(() => model.embed(ids))];
  let tiedEmbeddingGrad: tf.Tensor | undefined;
  try {
    for (let l = 0; l < c.numHiddenLayers; l++)
      inputs.push(tf.tidy(() => model.decoderLayerAt(l, inputs[l], ctx).x));
    // the head: loss → gradient at the last hidden states and of the head's variables
    const head = groups.head;
    const last = inputs[c.numHiddenLayers];
    const headVars = [...head.values()];
    const { value, grads } = tf
      .engine()
      .gradients(
        () => model.crossEntropy(model.head(last), targets),
        [last, ...headVars],
        undefined,
        true,
      );
    const loss = (await value.data())[0];
    value.dispose();
    let dy = grads[0];
    const headGrads = named(head, grads.slice(1));
    const embedName = 'model.embed_tokens.weight';
    if (c.tieWordEmbeddings && headGrads.has(embedName)) {
      // the tied embedding's gradient is complete only after the embedding lookup's part
      tiedEmbeddingGrad = headGrads.get(embedName);
      headGrads.delete(embedName);
    }
    await deliver('head', headGrads, opts.onGradients);
    for (let l = c.numHiddenLayers - 1; l >= 0; l--) {
      const vars = groups.layers[l];
      const x = inputs[l];
      const upstream = dy;
      const r = tf
        .engine()
        .gradients(
          () => model.decoderLayerAt(l, x, ctx).x,
          [x, ...vars.values()],
          upstream as tf.Tensor3D,
          true,
        );
      r.value.dispose();
      upstream.dispose();
      inputs[l + 1].dispose();
      dy = r.grads[0];
      await deliver(`model.layers.${l}`, named(vars, r.grads.slice(1)), opts.onGradients);
    }
    const embed = groups.embed;
    if (embed.size) {
      const r = tf
        .engine()
        .gradients(() => model.embed(ids), [...embed.values()], dy as tf.Tensor3D, true);
      r.value.dispose();
      let g = r.grads[0];
      if (tiedEmbeddingGrad) {
        const sum = g.add(tiedEmbeddingGrad);
        g.dispose();
        g = sum;
      }
      await deliver('embed', named(embed, [g]), opts.onGradients);
    }
    dy.dispose();
    return loss;
  } finally {
    tf.dispose([...inputs, ids, ctx.cos, ctx.sin, ctx.mask]);
    tiedEmbeddingGrad?.dispose();
  }
}

function named(vars: Map<string, tf.Variable>, grads: tf.Tensor[]): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  [...vars.keys()].forEach((name, i) => {
    if (grads[i]) out.set(name, grads[i]);
  });
  return out;
}

async function deliver(
  group: string,
  grads: Map<string, tf.Tensor>,
  onGradients: LayerwiseStepOptions['onGradients'],
): Promise<void> {
  try {
    if (grads.size) await onGradients(group, grads);
  } finally {
    tf.dispose([...grads.values()]);
  }
}

/** The trainable variables by group: head, each decoder layer, embeddings. */
export function groupVariables(
  trainable: Map<string, tf.Variable>,
  layers: number,
  tied: boolean,
): {
  head: Map<string, tf.Variable>;
  layers: Map<string, tf.Variable>[];
  embed: Map<string, tf.Variable>;
} {
  const head = new Map<string, tf.Variable>();
  const embed = new Map<string, tf.Variable>();
  const perLayer = Array.from({ length: layers }, () => new Map<string, tf.Variable>());
  for (const [name, v] of trainable) {
    const m = /^model\.layers\.(\d+)\./.exec(name);
    if (m && Number(m[1]) < layers) perLayer[Number(m[1])].set(name, v);
    else if (name.startsWith('model.embed_tokens.weight')) {
      embed.set(name, v);
      if (tied) head.set(name, v);
    } else if (name.startsWith('model.norm.weight') || name.startsWith('lm_head.weight'))
      head.set(name, v);
    else
      throw new InvalidArgumentError(
        `layerwiseStep: '${name}' belongs to no decoder layer, the head or the embeddings`,
      );
  }
  return { head, layers: perLayer, embed };
}
