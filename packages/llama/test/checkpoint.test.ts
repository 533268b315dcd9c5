import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import '@edkm/backend-webgpu';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DTypeError, FormatError, IOError, ShapeError, tf, useBackend } from '@edkm/core';
import { testBackends } from '@edkm/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CheckpointReader,
  INDEX_FILE,
  SafetensorsFile,
  defaultModelDir,
  loadLlama,
  makeRandomLlama,
  parseLlamaConfig,
  ropeInverseFrequencies,
  writeSafetensors,
} from '../src/index';

const root = mkdtempSync(join(tmpdir(), 'edkm-ckpt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A Llama-3-config model of a few MB: 128,256 tokens, tied embeddings, GQA, llama3 rope, shards. */
function makeSmall(dir: string) {
  return makeRandomLlama(dir, {
    preset: 'llama-3-8b',
    layers: 2,
    hidden: 32,
    intermediate: 64,
    heads: 4,
    kvHeads: 2,
    tieEmbeddings: true,
    maxShardBytes: 64 * 1024,
    seed: 7,
    tokenizerFrom: defaultModelDir(),
  });
}

const small = join(root, 'small');
const made = makeSmall(small);

/** A copy of the small model to break. */
function copy(name: string): string {
  const dir = join(root, name);
  cpSync(small, dir, { recursive: true });
  return dir;
}
const index = (dir: string) =>
  JSON.parse(readFileSync(join(dir, INDEX_FILE), 'utf8')) as {
    weight_map: Record<string, string>;
  };
const writeIndex = (dir: string, json: unknown) =>
  writeFileSync(join(dir, INDEX_FILE), JSON.stringify(json));
const config = () => parseLlamaConfig(JSON.parse(readFileSync(join(small, 'config.json'), 'utf8')));

describe('make-model', () => {
  it('writes a sharded bf16 HF folder of the preset, σ = 0.02, norms 1, reproducible', () => {
    expect(made.files.at(-1)).toBe(INDEX_FILE);
    expect(made.files.length).toBeGreaterThanOrEqual(3);
    const c = config();
    expect(c.vocabSize).toBe(128256);
    expect(c.tieWordEmbeddings).toBe(true);
    expect(c.numKeyValueHeads).toBe(2);
    expect(c.ropeTheta).toBe(500000);
    expect(c.ropeScaling).toEqual({
      type: 'llama3',
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    });
    const reader = new CheckpointReader(small, c);
    try {
      expect(reader.has('lm_head.weight')).toBe(false);
      expect(reader.entry('model.embed_tokens.weight').dtype).toBe('BF16');
      const w = reader.read('model.embed_tokens.weight');
      expect(w.length).toBe(128256 * 32);
      let sum = 0;
      let sq = 0;
      for (const v of w) {
        sum += v;
        sq += v * v;
      }
      const mean = sum / w.length;
      expect(Math.abs(mean)).toBeLessThan(1e-4);
      expect(Math.sqrt(sq / w.length - mean * mean)).toBeCloseTo(0.02, 3);
      expect([...reader.read('model.norm.weight')].every((v) => v === 1)).toBe(true);
    } finally {
      reader.close();
    }
    const again = join(root, 'again');
    makeSmall(again);
    for (const f of made.files)
      expect(readFileSync(join(again, f)).equals(readFileSync(join(small, f)))).toBe(true);
  });

  it('refuses a vocabulary smaller than the tokenizer', () => {
    expect(() =>
      makeRandomLlama(join(root, 'v'), {
        preset: 'tinyllama-1.1b',
        layers: 1,
        hidden: 32,
        heads: 4,
        intermediate: 8,
        vocab: 100,
        tokenizerFrom: defaultModelDir(),
      }),
    ).toThrow(/smaller than the tokenizer/);
  });
});

describe('llama3 rope scaling', () => {
  it('keeps high frequencies, divides low ones by the factor, interpolates between', () => {
    const c = config();
    const plain = ropeInverseFrequencies({ ...c, ropeScaling: { type: 'default' } });
    const scaled = ropeInverseFrequencies(c);
    const s = c.ropeScaling as { factor: number; lowFreqFactor: number; highFreqFactor: number };
    for (let i = 0; i < plain.length; i++) {
      const wavelength = (2 * Math.PI) / plain[i];
      if (wavelength < 8192 / s.highFreqFactor) expect(scaled[i]).toBe(plain[i]);
      else if (wavelength > 8192 / s.lowFreqFactor)
        expect(scaled[i]).toBeCloseTo(plain[i] / s.factor, 12);
      else {
        expect(scaled[i]).toBeLessThanOrEqual(plain[i]);
        expect(scaled[i]).toBeGreaterThanOrEqual(plain[i] / s.factor);
      }
    }
    // head_dim 8 at θ = 500,000: i = 0 high, i = 3 low frequency
    expect(scaled[0]).toBe(plain[0]);
    expect(scaled[3]).toBeCloseTo(plain[3] / 8, 12);
  });

  it('rejects a llama3 scaling without its frequency factors', () => {
    expect(() =>
      parseLlamaConfig({
        hidden_size: 8,
        intermediate_size: 8,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        vocab_size: 8,
        rope_scaling: { rope_type: 'llama3', factor: 8 },
      }),
    ).toThrow(FormatError);
  });
});

describe('hostile index files', () => {
  it('a shard the index names is missing: IOError', () => {
    const dir = copy('missing');
    rmSync(join(dir, index(dir).weight_map['model.norm.weight']));
    expect(() => loadLlama(dir)).toThrow(IOError);
    expect(() => loadLlama(dir)).toThrow(/names shard .* which is missing/);
  });

  it('a tensor in two shards: FormatError naming both', () => {
    const dir = copy('twice');
    const shards = readdirSync(dir).filter((f) => f.startsWith('model-'));
    const st = new SafetensorsFile(join(dir, shards[0]));
    const name = [...st.tensors.keys()][0];
    st.close();
    // the last shard also holds it (the index keeps its first place)
    const last = join(dir, shards.at(-1)!);
    const lastFile = new SafetensorsFile(last);
    const tensors: Parameters<typeof writeSafetensors>[1] = {};
    for (const [n, e] of lastFile.tensors)
      tensors[n] = { dtype: e.dtype, shape: e.shape, data: lastFile.read(n) };
    lastFile.close();
    tensors[name] = { dtype: 'BF16', shape: [1], data: new Uint16Array(1) };
    writeSafetensors(last, tensors);
    expect(() => loadLlama(dir)).toThrow(FormatError);
    expect(() => loadLlama(dir)).toThrow(/is in two shards/);
  });

  it('the index puts a tensor in a shard that lacks it: FormatError', () => {
    const dir = copy('wrong-place');
    const json = index(dir);
    const files = [...new Set(Object.values(json.weight_map))];
    json.weight_map['model.norm.weight'] = files.find(
      (f) => f !== json.weight_map['model.norm.weight'],
    )!;
    writeIndex(dir, json);
    expect(() => loadLlama(dir)).toThrow(FormatError);
  });

  it('a shard path outside the folder: FormatError', () => {
    const dir = copy('escape');
    const json = index(dir);
    json.weight_map['model.norm.weight'] = '../small/model-00001-of-00009.safetensors';
    writeIndex(dir, json);
    expect(() => loadLlama(dir)).toThrow(/plain file names/);
    writeIndex(dir, { weight_map: [] });
    expect(() => loadLlama(dir)).toThrow(/weight_map/);
  });

  it('a weight of an integer dtype: DTypeError', () => {
    const dir = copy('dtype');
    const file = join(dir, index(dir).weight_map['model.norm.weight']);
    const st = new SafetensorsFile(file);
    const tensors: Parameters<typeof writeSafetensors>[1] = {};
    for (const [n, e] of st.tensors)
      tensors[n] = { dtype: e.dtype, shape: e.shape, data: st.read(n) };
    st.close();
    tensors['model.norm.weight'] = { dtype: 'I16', shape: [32], data: new Uint16Array(32) };
    writeSafetensors(file, tensors);
    expect(() => loadLlama(dir)).toThrow(DTypeError);
  });

  it('shapes that disagree with config.json: ShapeError; a missing weight: FormatError', () => {
    const dir = copy('shape');
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, intermediate_size: 96 }));
    expect(() => loadLlama(dir)).toThrow(ShapeError);
    expect(() => loadLlama(dir)).toThrow(/mlp\.gate_proj\.weight' is \[64,32\] but config\.json/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, tie_word_embeddings: false }));
    expect(() => loadLlama(dir)).toThrow(/lacks 'lm_head.weight'/);
  });
});

describe.each(await testBackends())('a sharded bf16 Llama-3-config model on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('loads tensor by tensor with the checkpoint values, runs, and frees every byte', async () => {
    const before = tf.memory().numTensors;
    const { model, config: c } = loadLlama(small);
    try {
      expect(c.tieWordEmbeddings).toBe(true);
      const st = new CheckpointReader(small);
      const raw = st.read('model.layers.1.mlp.down_proj.weight');
      st.close();
      const w = (await model
        .getWeights()
        .get('model.layers.1.mlp.down_proj.weight')!
        .data()) as Float32Array;
      expect(w).toEqual(raw);
      const logits = model.forward([[1, 5, 4095, 17]]);
      expect(logits.shape).toEqual([1, 4, 128256]);
      const v = (await logits.data()) as Float32Array;
      logits.dispose();
      expect(v.every(Number.isFinite)).toBe(true);
    } finally {
      model.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
