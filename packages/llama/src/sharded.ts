import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { INDEX_FILE, SINGLE_FILE } from './checkpoint';
import { InvalidArgumentError } from './errors';
import { DTYPE_BYTES, type TensorSpec, writeSafetensorsStream } from './safetensors';

export interface ShardedWriteResult {
  /** The files written, in order. */
  files: string[];
  /** Bytes of tensor data in all shards. */
  totalBytes: number;
}

/**
 * Writes tensors as a Hugging Face checkpoint in `dir`: shards of at most `maxShardBytes` of
 * tensor data each (a tensor larger than that gets a shard of its own), named
 * model-0000i-of-0000n.safetensors, plus model.safetensors.index.json ({ metadata.total_size,
 * weight_map }); one shard is written as model.safetensors without an index. Tensors are produced
 * one at a time by `produce` (see writeSafetensorsStream), in the order of `specs`.
 */
export function writeShardedSafetensors(
  dir: string,
  specs: TensorSpec[],
  produce: (spec: TensorSpec, write: (bytes: ArrayBufferView) => void) => void,
  opts: { maxShardBytes?: number; metadata?: Record<string, string>; durable?: boolean } = {},
): ShardedWriteResult {
  const max = opts.maxShardBytes ?? 5 * 2 ** 30;
  if (!(Number.isSafeInteger(max) && max > 0))
    throw new InvalidArgumentError(`maxShardBytes must be a positive integer, got ${max}`);
  const shards: TensorSpec[][] = [];
  let current: TensorSpec[] = [];
  let bytes = 0;
  let totalBytes = 0;
  for (const s of specs) {
    const size = s.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[s.dtype];
    if (current.length && bytes + size > max) {
      shards.push(current);
      current = [];
      bytes = 0;
    }
    current.push(s);
    bytes += size;
    totalBytes += size;
  }
  if (current.length) shards.push(current);
  const n = shards.length;
  const pad = (i: number) => String(i).padStart(5, '0');
  const files =
    n === 1 ? [SINGLE_FILE] : shards.map((_, i) => `model-${pad(i + 1)}-of-${pad(n)}.safetensors`);
  // a stale index or single file from an earlier write would contradict the new shards
  rmSync(join(dir, n === 1 ? INDEX_FILE : SINGLE_FILE), { force: true });
  const weightMap: Record<string, string> = {};
  shards.forEach((shard, i) => {
    writeSafetensorsStream(
      join(dir, files[i]),
      shard,
      produce,
      { format: 'pt', ...opts.metadata },
      opts.durable,
    );
    for (const s of shard) weightMap[s.name] = files[i];
  });
  if (n > 1)
    writeFileSync(
      join(dir, INDEX_FILE),
      `${JSON.stringify({ metadata: { total_size: totalBytes }, weight_map: weightMap }, null, 2)}\n`,
    );
  return { files: n > 1 ? [...files, INDEX_FILE] : files, totalBytes };
}
