// The palettizer and the memory plan, from config.json alone: a run that cannot fit is refused
// before the weights are loaded.
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from '@edkm/core';
import { Palettizer } from '@edkm/dkm';
import { expectedWeightShapes, parseLlamaConfig } from '@edkm/llama';
import { Marshaler } from '@edkm/marshal';
import { checkMemoryPlan, formatMemoryPlan, planMemory } from '../memory-plan';
import { type FinetuneOptions, type RunControl, isDenseConfig } from './options';

export interface RunPlan {
  palettizer: Palettizer;
  /** How many linear weights the model has (the palettizer clusters some or all of them). */
  linearWeights: number;
}

/**
 * Builds the palettizer for the model's linear weights and checks the run's memory plan against
 * the device (`plugin`: the backend taken; on cpu the device is host memory unless given).
 */
export function planRun(o: FinetuneOptions, ctl: RunControl, plugin: string): RunPlan {
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
  if (palettizer.layers.size === 0 && !isDenseConfig(o.palettize))
    throw new InvalidArgumentError(
      'the palettizer config clusters no weight of this model (for a 16-bit fine-tune without palettization, use --bits 16)',
    );
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
  const deviceMemory = ctl.deviceMemory ?? (plugin === 'cpu' ? totalmem() : undefined);
  ctl.log(formatMemoryPlan(plan, deviceMemory));
  checkMemoryPlan(plan, deviceMemory, Boolean(o.checkpointing));
  return { palettizer, linearWeights: linear.size };
}
