import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '@edkm/core';
import { describe, expect, it } from 'vitest';
import {
  IOError,
  SafetensorsFile,
  defaultModelDir,
  parseLlamaConfig,
  writeSafetensors,
} from '../src/index';

const dir = mkdtempSync(join(tmpdir(), 'edkm-st-'));

function file(name: string, header: object | string, data = new Uint8Array(0)): string {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const out = Buffer.alloc(8 + json.length + data.length);
  out.writeBigUInt64LE(BigInt(json.length));
  json.copy(out, 8);
  out.set(data, 8 + json.length);
  const path = join(dir, name);
  writeFileSync(path, out);
  return path;
}

describe('safetensors', () => {
  it('round-trips every dtype bit-exactly, with metadata and an 8-byte aligned header', () => {
    const path = join(dir, 'rt.safetensors');
    const f32 = Float32Array.from([1.5, -2, Number.NaN, 3e-39]);
    const bf16 = Uint16Array.from([0x3f80, 0xbf80, 0x7fc0]);
    const u8 = Uint8Array.from([1, 2, 3, 255, 0]);
    const i32 = Int32Array.from([-1, 2 ** 31 - 1]);
    writeSafetensors(
      path,
      {
        a: { dtype: 'F32', shape: [2, 2], data: f32 },
        b: { dtype: 'BF16', shape: [3], data: bf16 },
        c: { dtype: 'U8', shape: [5], data: u8 },
        d: { dtype: 'I32', shape: [2], data: i32 },
      },
      { bits: '3' },
    );
    const headerLen = Number(readFileSync(path).readBigUInt64LE(0));
    expect((8 + headerLen) % 8).toBe(0);
    const st = new SafetensorsFile(path);
    expect(st.metadata).toEqual({ bits: '3' });
    expect(new Uint8Array(st.read('a'))).toEqual(new Uint8Array(f32.buffer));
    expect(new Uint16Array(st.read('b').buffer)).toEqual(bf16);
    expect(st.read('c')).toEqual(u8);
    expect(new Int32Array(st.read('d').buffer)).toEqual(i32);
    expect(st.tensors.get('a')).toMatchObject({ dtype: 'F32', shape: [2, 2] });
    st.close();
  });

  it('reads the shipped model lazily', () => {
    const st = new SafetensorsFile(join(defaultModelDir(), 'model.safetensors'));
    expect(st.tensors.get('model.embed_tokens.weight')).toMatchObject({
      dtype: 'BF16',
      shape: [4096, 288],
    });
    expect(st.tensors.size).toBe(1 + 1 + 1 + 6 * 9);
    st.close();
  });

  it.each([
    [
      'a file shorter than the length field',
      () => {
        writeFileSync(join(dir, 'short'), Buffer.alloc(3));
        return join(dir, 'short');
      },
      /too short/,
    ],
    [
      'a header length past the end',
      () => {
        const b = Buffer.alloc(12);
        b.writeBigUInt64LE(1000n);
        writeFileSync(join(dir, 'past'), b);
        return join(dir, 'past');
      },
      /runs past the end/,
    ],
    ['a non-JSON header', () => file('nojson', '{not json'), /not valid JSON/],
    [
      'an unknown dtype',
      () =>
        file('dtype', { a: { dtype: 'F8', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)),
      /unknown dtype "F8"/,
    ],
    [
      'shape × dtype not matching the range',
      () =>
        file(
          'mismatch',
          { a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } },
          new Uint8Array(8),
        ),
      /is 8 bytes but its range is 4/,
    ],
    [
      'a range outside the file (truncated data)',
      () =>
        file(
          'trunc',
          { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } },
          new Uint8Array(8),
        ),
      /outside the 8-byte data section/,
    ],
    [
      'overlapping ranges',
      () =>
        file(
          'overlap',
          {
            a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] },
            b: { dtype: 'U8', shape: [4], data_offsets: [2, 6] },
          },
          new Uint8Array(8),
        ),
      /overlap/,
    ],
    [
      'a hostile header length',
      () => {
        const b = Buffer.alloc(16);
        b.writeBigUInt64LE(2n ** 40n);
        writeFileSync(join(dir, 'huge'), b);
        return join(dir, 'huge');
      },
      /out of bounds/,
    ],
  ])('rejects %s with a FormatError', (_label, make, message) => {
    const path = make();
    expect(() => new SafetensorsFile(path)).toThrow(FormatError);
    expect(() => new SafetensorsFile(path)).toThrow(message);
  });

  it('names a missing file', () => {
    expect(() => new SafetensorsFile(join(dir, 'nope.safetensors'))).toThrow(IOError);
  });
});

describe('config', () => {
  const base = {
    model_type: 'llama',
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 100,
    max_position_embeddings: 128,
  };
  it('reads rope_theta from transformers 4 and 5 layouts, and linear scaling', () => {
    expect(parseLlamaConfig({ ...base, rope_theta: 500000 }).ropeTheta).toBe(500000);
    expect(
      parseLlamaConfig({ ...base, rope_parameters: { rope_theta: 1e4, rope_type: 'default' } })
        .ropeTheta,
    ).toBe(1e4);
    expect(
      parseLlamaConfig({ ...base, rope_scaling: { type: 'linear', factor: 2 } }).ropeScaling,
    ).toEqual({ type: 'linear', factor: 2 });
    expect(parseLlamaConfig(base).headDim).toBe(16);
  });
  it('rejects unsupported or malformed configs clearly', () => {
    expect(() =>
      parseLlamaConfig({ ...base, rope_scaling: { rope_type: 'yarn', factor: 4 } }),
    ).toThrow(/'yarn' is not supported/);
    expect(() => parseLlamaConfig({ ...base, num_key_value_heads: 3 })).toThrow(/not a multiple/);
    expect(() => parseLlamaConfig({ ...base, hidden_size: -1 })).toThrow(
      /hidden_size must be a positive integer/,
    );
    expect(() => parseLlamaConfig({ ...base, model_type: 'gpt2' })).toThrow(/not 'llama'/);
  });
});
