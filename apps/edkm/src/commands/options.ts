// What the command files share: argument parsers, the --backend option, repository defaults.
import { IOError, InvalidArgumentError } from '@edkm/core';
import { defaultModelDir } from '@edkm/llama';
import { InvalidArgumentError as CommanderArgError, Option } from 'commander';

/** Where a command writes: results on stdout, notes (progress, the backend taken) on stderr. */
export interface CliIO {
  print: (line: string) => void;
  note: (line: string) => void;
}

export const int = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new CommanderArgError(`${name} must be an integer`);
  return n;
};

export const num = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new CommanderArgError(`${name} must be a number`);
  return n;
};

export const backendOption = () =>
  new Option('--backend <name>', 'compute backend')
    .choices(['auto', 'webgpu', 'wasm', 'cpu'])
    .default('auto');

/**
 * A flag's default that lives in this repository (the shipped model, the Alpaca seed tasks), looked
 * up only when the flag is absent: an installed or bundled `edkm` has no repository around it, and
 * the error then names the flag to pass.
 */
export function orDefault(value: string | undefined, flag: string, find: () => string): string {
  if (value !== undefined) return value;
  try {
    return find();
  } catch (err) {
    if (!(err instanceof IOError)) throw err;
    throw new InvalidArgumentError(
      `pass ${flag}: its default is found only inside the edkm repository (${err.message})`,
      { cause: err },
    );
  }
}

/** `--model`, or the shipped model of the repository when the flag is absent. */
export const defaultModel = (o: { model?: string }) =>
  orDefault(o.model, '--model', defaultModelDir);

export const SHIPPED_MODEL = "default: the repository's models/edkm-tiny";
