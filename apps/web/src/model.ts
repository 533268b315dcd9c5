// Opening an exported model folder in a browser: no file system, only bytes (fetched from a URL
// or read from files the user picked). Every problem is an Error with a message a person can act on.
import {
  Decoder,
  type GenerateOptions,
  type LlamaConfig,
  Tokenizer,
  parseLlamaConfig,
  textStream,
} from '@edkm/llama';
import { PalettizedFile, type SizeReport, palettizedSourceOf } from '@edkm/palettized';

/** Reads one file of the model folder by name; undefined when the folder has no such file. */
export type FileReader = (name: string) => Promise<Uint8Array | undefined>;

export interface OpenedModel {
  config: LlamaConfig;
  tokenizer: Tokenizer;
  file: PalettizedFile;
  size: SizeReport;
  /** Made once (by prepareModel or the first generation) and kept: the weights go to the device once. */
  decoder?: Decoder;
  /** Milliseconds prepareModel took (undefined before it ran). */
  prepareMs?: number;
}

/** Positions the page's KV cache holds (prompt + new tokens), at most the model's own limit. */
export const MAX_LENGTH = 1024;

/** Frees the model's device memory and its file. */
export function closeModel(model: OpenedModel): void {
  model.decoder?.dispose();
  model.decoder = undefined;
  model.file.close();
}

/** A model folder served at `base` (a URL ending in '/'). */
export function urlReader(base: string): FileReader {
  const root = base.endsWith('/') ? base : `${base}/`;
  return async (name) => {
    let res: Response;
    try {
      res = await fetch(root + name);
    } catch (err) {
      throw new Error(`cannot fetch ${root + name}: ${(err as Error).message}`);
    }
    if (res.status === 404) return undefined;
    if (!res.ok) throw new Error(`${root + name}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  };
}

/** Files the user picked (a folder through a directory input, or the files themselves). */
export function filesReader(files: File[]): FileReader {
  const byName = new Map(files.map((f) => [f.name, f]));
  return async (name) => {
    const f = byName.get(name);
    return f ? new Uint8Array(await f.arrayBuffer()) : undefined;
  };
}

function json(bytes: Uint8Array, name: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new Error(`${name} is not valid JSON`);
  }
}

/** Opens a palettized export (edkm export's folder): config, tokenizer, weights and size. */
export async function openModel(read: FileReader): Promise<OpenedModel> {
  const need = async (name: string, why: string) => {
    const bytes = await read(name);
    if (!bytes) throw new Error(`the model folder has no ${name} (${why})`);
    return bytes;
  };
  const configBytes = await need('config.json', 'pick a folder written by `edkm export`');
  const config = parseLlamaConfig(json(configBytes, 'config.json'), 'config.json');
  const tokenizer = new Tokenizer(
    json(await need('tokenizer.json', 'the tokenizer'), 'tokenizer.json') as object,
    json(
      (await read('tokenizer_config.json')) ?? new TextEncoder().encode('{}'),
      'tokenizer_config.json',
    ) as object,
  );
  const bytes = await need('model.safetensors', 'the weights');
  // a 16-bit Hugging Face folder or a truncated file fails here with the reader's own message
  const file = new PalettizedFile({ name: 'model.safetensors', bytes });
  return { config, tokenizer, file, size: file.sizeReport() };
}

function decoderOf(model: OpenedModel): Decoder {
  model.decoder ??= new Decoder(model.config, palettizedSourceOf(model.file), {
    maxLength: Math.min(model.config.maxPositionEmbeddings, MAX_LENGTH),
  });
  return model.decoder;
}

/**
 * Makes the model's Decoder (its weights to the device) and runs one short greedy generation (a
 * 4-token prompt, 2 new tokens: the prefill's row tile and the one-row decode step), so that the
 * kernels a generation needs are compiled before the first press of generate. On SwiftShader
 * compiling them is most of a first generation's time (about 1 s of 1.3 s for the tiny export).
 */
export async function prepareModel(model: OpenedModel): Promise<number> {
  const t0 = performance.now();
  const decoder = decoderOf(model);
  const id = model.tokenizer.bosId ?? 0;
  await decoder.generate([[id, id, id, id]], { maxNewTokens: 2, greedy: true, eosIds: [] });
  model.prepareMs = performance.now() - t0;
  return model.prepareMs;
}

export interface GenerateResult {
  ids: number[];
  text: string;
  /**
   * Milliseconds from the call to the first new token: on a model's first generation this
   * includes making its Decoder (weights to the device) and compiling the kernels.
   */
  firstTokenMs: number;
  /** Of which making the Decoder (0 when this model's Decoder was already made). */
  decoderMs: number;
  /** New tokens per second after the first. */
  tokensPerSecond: number;
}

/** Generates after `prompt` through the Decoder, streaming text as it is decided. */
export async function generateText(
  model: OpenedModel,
  prompt: string,
  opts: Omit<GenerateOptions, 'onToken'> & { onText?: (text: string) => void } = {},
): Promise<GenerateResult> {
  const { onText, ...sampling } = opts;
  const t0 = performance.now();
  const promptIds = model.tokenizer.encode(prompt);
  const decoder = decoderOf(model);
  const decoderMs = performance.now() - t0;
  if (promptIds.length >= decoder.maxLength)
    throw new Error(
      `the prompt has ${promptIds.length} tokens; this page decodes at most ${decoder.maxLength}`,
    );
  const stream = textStream(model.tokenizer, onText);
  const times: number[] = [];
  await decoder.generate([promptIds], {
    ...sampling,
    onToken: (id) => {
      times.push(performance.now());
      stream.onToken(id);
    },
  });
  const text = stream.finish();
  const span = times.length > 1 ? (times[times.length - 1] - times[0]) / 1000 : 0;
  return {
    ids: stream.ids,
    text,
    firstTokenMs: times.length ? times[0] - t0 : Number.NaN,
    decoderMs,
    tokensPerSecond: span > 0 ? (times.length - 1) / span : Number.NaN,
  };
}
