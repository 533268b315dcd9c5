import { DeviceLimitError, InvalidArgumentError } from '@edkm/core';
import { type LlamaConfig, expectedWeightShapes } from '@edkm/llama';

/** Device bytes a fine-tuning run will need, by kind, estimated before anything is loaded. */
export interface MemoryPlan {
  /** Every weight as a float32 tf.Variable (the compute and master copy). */
  weights: number;
  /** AdamW's two float32 moments per trained weight. */
  optimizer: number;
  /** Gradients alive at once: every trained weight's, or one layer's with checkpointing. */
  gradients: number;
  /** Activations kept for the backward pass, the logits and their gradient. */
  activations: number;
  /** DKM's per-layer tables and per-weight state (eDKM's fused linear keeps ~0.03 B/weight). */
  dkm: number;
  /** Temporaries of the largest weight's optimizer update. */
  workspace: number;
  total: number;
}

export interface MemoryPlanInput {
  config: LlamaConfig;
  batch: number;
  seq: number;
  /** Names of the trained model weights (not the palettizer's own small variables). */
  trained: Set<string>;
  /** Weights that DKM clusters. */
  palettized: Set<string>;
  checkpointing: boolean;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * The memory plan of a fine-tuning step (float32 everywhere; the estimate of what tfjs keeps for
 * the backward pass of this model's ops, see apps/edkm/README.md).
 */
export function planMemory(p: MemoryPlanInput): MemoryPlan {
  const c = p.config;
  const shapes = expectedWeightShapes(c);
  let params = 0;
  let trained = 0;
  let palettized = 0;
  let largest = 0;
  const groupParams = new Map<string, number>();
  for (const [name, shape] of shapes) {
    const n = size(shape);
    params += n;
    if (p.trained.has(name)) {
      largest = Math.max(largest, n);
      trained += n;
      const group = /^model\.layers\.(\d+)\./.exec(name)?.[1] ?? name;
      groupParams.set(group, (groupParams.get(group) ?? 0) + n);
    }
    if (p.palettized.has(name)) palettized += n;
  }
  const tokens = p.batch * p.seq;
  const H = c.hiddenSize;
  const kv = c.numKeyValueHeads * c.headDim;
  // floats per token that one decoder layer's ops keep for the backward pass: norms, projections,
  // rotary products, the attention scores (heads × seq), the SwiGLU MLP's five [I] tensors
  const perLayer = 20 * H + 10 * kv + 5 * c.intermediateSize + 4 * c.numAttentionHeads * p.seq;
  const layerFloats = p.checkpointing
    ? (c.numHiddenLayers + 1) * H + 2 * perLayer // kept inputs + one layer recomputed
    : c.numHiddenLayers * perLayer;
  const headFloats = 6 * c.vocabSize;
  const maxGroup = Math.max(0, ...groupParams.values());
  return finish({
    weights: 4 * params,
    optimizer: 8 * trained,
    gradients: 4 * (p.checkpointing ? maxGroup : trained),
    activations: 4 * tokens * (layerFloats + headFloats),
    dkm: Math.ceil(0.03 * palettized) + p.palettized.size * 2 * 2 ** 20,
    workspace: 4 * 6 * largest,
  });
}

function finish(plan: Omit<MemoryPlan, 'total'>): MemoryPlan {
  return { ...plan, total: Object.values(plan).reduce((a, b) => a + b, 0) };
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;

export function formatMemoryPlan(plan: MemoryPlan, device?: number): string {
  const parts = (['weights', 'optimizer', 'gradients', 'activations', 'dkm', 'workspace'] as const)
    .map((k) => `${k} ${gib(plan[k])}`)
    .join(', ');
  return `memory plan: ${parts}; total ${gib(plan.total)}${device ? ` of ${gib(device)} on the device` : ' (device memory unknown: pass --device-memory to check it)'}`;
}

/** Refuses a plan that does not fit, before anything is loaded. */
export function checkMemoryPlan(
  plan: MemoryPlan,
  device: number | undefined,
  checkpointing: boolean,
): void {
  if (device === undefined || plan.total <= device) return;
  throw new DeviceLimitError(
    `${formatMemoryPlan(plan, device)}: it does not fit. ${checkpointing ? 'Lower --batch or --seq, train fewer weights, or use a larger device' : "Pass --checkpointing (one layer's activations and gradients at a time), or lower --batch or --seq"}`,
  );
}

/** "139GiB", "80 GB", "1.5e11" → bytes. */
export function parseBytes(text: string, flag = '--device-memory'): number {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*(b|kib|mib|gib|tib|kb|mb|gb|tb)?\s*$/i.exec(text);
  if (!m)
    throw new InvalidArgumentError(`${flag} must be bytes such as 139GiB or 80GB, got '${text}'`);
  const unit = (m[2] ?? 'b').toLowerCase();
  const mult: Record<string, number> = {
    b: 1,
    kib: 2 ** 10,
    mib: 2 ** 20,
    gib: 2 ** 30,
    tib: 2 ** 40,
    kb: 1e3,
    mb: 1e6,
    gb: 1e9,
    tb: 1e12,
  };
  return Math.round(Number(m[1]) * mult[unit]);
}
