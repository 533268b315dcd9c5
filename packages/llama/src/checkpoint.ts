import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DTypeError, ShapeError, fromHalfBits, makeResident, tf } from '@edkm/core';
import type { LlamaConfig } from './config';
import { FormatError, IOError } from './errors';
import { SafetensorsFile, type TensorEntry } from './safetensors';

export const INDEX_FILE = 'model.safetensors.index.json';
export const SINGLE_FILE = 'model.safetensors';

/** dtypes a LLaMA weight may be stored in. */
const WEIGHT_DTYPES = new Set(['F32', 'F16', 'BF16']);

/**
 * The weights a LLaMA config needs, by Hugging Face name, with their shapes (linear weights
 * [out_features, in_features]). lm_head.weight only when the embeddings are not tied.
 */
export function expectedWeightShapes(c: LlamaConfig): Map<string, number[]> {
  const H = c.hiddenSize;
  const q = c.numAttentionHeads * c.headDim;
  const kv = c.numKeyValueHeads * c.headDim;
  const out = new Map<string, number[]>([
    ['model.embed_tokens.weight', [c.vocabSize, H]],
    ['model.norm.weight', [H]],
  ]);
  if (!c.tieWordEmbeddings) out.set('lm_head.weight', [c.vocabSize, H]);
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const p = `model.layers.${l}.`;
    out.set(`${p}input_layernorm.weight`, [H]);
    out.set(`${p}post_attention_layernorm.weight`, [H]);
    out.set(`${p}self_attn.q_proj.weight`, [q, H]);
    out.set(`${p}self_attn.k_proj.weight`, [kv, H]);
    out.set(`${p}self_attn.v_proj.weight`, [kv, H]);
    out.set(`${p}self_attn.o_proj.weight`, [H, q]);
    out.set(`${p}mlp.gate_proj.weight`, [c.intermediateSize, H]);
    out.set(`${p}mlp.up_proj.weight`, [c.intermediateSize, H]);
    out.set(`${p}mlp.down_proj.weight`, [H, c.intermediateSize]);
  }
  return out;
}

/** Float32 values of a tensor stored as F32, F16 or BF16. */
export function decodeTensor(bytes: Uint8Array, entry: TensorEntry, source: string): Float32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  if (entry.dtype === 'F32')
    return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4).slice();
  if (entry.dtype === 'BF16' || entry.dtype === 'F16') {
    return fromHalfBits(
      new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2),
      entry.dtype === 'BF16' ? 'bf16' : 'fp16',
    );
  }
  throw new DTypeError(
    `${source}: tensor '${entry.name}' has dtype ${entry.dtype}; weights must be F32, F16 or BF16`,
  );
}

function readIndex(path: string): Record<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new FormatError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map))
    throw new FormatError(`${path}: 'weight_map' must be an object of tensor name → shard file`);
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== 'string' || file === '' || basename(file) !== file || file === '..')
      throw new FormatError(
        `${path}: tensor '${name}' maps to ${JSON.stringify(file)}; shard files must be plain file names in the model folder`,
      );
  }
  return map as Record<string, string>;
}

/**
 * The safetensors weights of a Hugging Face model folder — `model.safetensors`, or the shards
 * that `model.safetensors.index.json` names — opened lazily (headers only) and checked against
 * each other and against the config before any tensor is read: every shard the index names
 * exists; no tensor is in two shards; the index and the shards agree on which tensor is where;
 * every weight the config needs is there with the config's shape and a float dtype (F32, F16,
 * BF16). Each violation is a typed error (IOError, FormatError, DTypeError, ShapeError) naming the
 * file and the tensor. Tensors are then read one at a time (`tensor(name)`), so host memory stays
 * near the largest tensor.
 */
export class CheckpointReader {
  readonly dir: string;
  /** Every tensor of the checkpoint → the file that holds it. */
  private readonly where = new Map<string, SafetensorsFile>();
  private readonly files: SafetensorsFile[] = [];

  constructor(dir: string, config?: LlamaConfig) {
    this.dir = dir;
    try {
      this.open(config);
    } catch (err) {
      this.close();
      throw err;
    }
  }

  private open(config?: LlamaConfig): void {
    const indexPath = join(this.dir, INDEX_FILE);
    let names: string[];
    let index: Record<string, string> | undefined;
    if (existsSync(indexPath)) {
      index = readIndex(indexPath);
      names = [...new Set(Object.values(index))].sort();
      if (names.length === 0) throw new FormatError(`${indexPath}: 'weight_map' is empty`);
      for (const f of names)
        if (!existsSync(join(this.dir, f)))
          throw new IOError(`${indexPath} names shard '${f}', which is missing from ${this.dir}`);
    } else {
      if (!existsSync(join(this.dir, SINGLE_FILE)))
        throw new IOError(`${this.dir} has neither ${SINGLE_FILE} nor ${INDEX_FILE}`);
      names = [SINGLE_FILE];
    }
    for (const f of names) {
      const st = new SafetensorsFile(join(this.dir, f));
      this.files.push(st);
      if (st.metadata.format === 'edkm-palettized')
        throw new FormatError(
          `${st.path} holds a palettized export (LUTs + packed indices): load it with loadPalettized() from @edkm/palettized`,
        );
      for (const name of st.tensors.keys()) {
        const other = this.where.get(name);
        if (other)
          throw new FormatError(
            `tensor '${name}' is in two shards: ${basename(other.path)} and ${f} (a checkpoint holds each tensor once)`,
          );
        if (index && index[name] !== f)
          throw new FormatError(
            `${indexPath}: ${index[name] === undefined ? 'does not list' : `maps to ${index[name]}`} tensor '${name}', which ${f} holds`,
          );
        this.where.set(name, st);
      }
    }
    if (index)
      for (const [name, f] of Object.entries(index))
        if (!this.where.has(name))
          throw new FormatError(`${indexPath} puts tensor '${name}' in ${f}, which lacks it`);
    if (config) this.check(config);
  }

  private check(config: LlamaConfig): void {
    for (const [name, shape] of expectedWeightShapes(config)) {
      const st = this.where.get(name);
      if (!st)
        throw new FormatError(
          `${this.dir}: the checkpoint lacks '${name}'${name === 'lm_head.weight' ? ' (config.json: tie_word_embeddings is false)' : ''}`,
        );
      const e = st.tensors.get(name)!;
      if (!WEIGHT_DTYPES.has(e.dtype))
        throw new DTypeError(
          `${st.path}: tensor '${name}' has dtype ${e.dtype}; weights must be F32, F16 or BF16`,
        );
      if (!tf.util.arraysEqual(e.shape, shape))
        throw new ShapeError(
          `${st.path}: tensor '${name}' is [${e.shape}] but config.json (hidden ${config.hiddenSize}, intermediate ${config.intermediateSize}, ${config.numAttentionHeads} heads, ${config.numKeyValueHeads} KV heads, head_dim ${config.headDim}, vocab ${config.vocabSize}) needs [${shape}]`,
        );
    }
  }

  /** Every tensor name in the checkpoint. */
  names(): string[] {
    return [...this.where.keys()];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  entry(name: string): TensorEntry {
    const st = this.where.get(name);
    if (!st) throw new FormatError(`${this.dir}: the checkpoint has no tensor '${name}'`);
    return st.tensors.get(name)!;
  }

  /** Bytes of the largest tensor as stored. */
  largestTensorBytes(): number {
    let max = 0;
    for (const [name, st] of this.where) {
      const e = st.tensors.get(name)!;
      max = Math.max(max, e.end - e.begin);
    }
    return max;
  }

  /** One tensor's values as float32 (read from its byte range only). */
  read(name: string): Float32Array {
    const st = this.where.get(name);
    if (!st) throw new FormatError(`${this.dir}: the checkpoint has no tensor '${name}'`);
    return decodeTensor(st.read(name), st.tensors.get(name)!, st.path);
  }

  /** One tensor as a float32 tf.Tensor on the active backend's device (no host copy kept). */
  tensor(name: string): tf.Tensor {
    const t = tf.tensor(this.read(name), this.entry(name).shape, 'float32');
    makeResident(t);
    return t;
  }

  close(): void {
    for (const f of this.files.splice(0)) f.close();
  }
}
