#!/usr/bin/env node
// The edkm command: finetune · export · eval · generate · flash · make-model · inspect · demo, one
// file each under commands/ (each parses its flags and calls the app's runX).
import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import '@edkm/backend-webgpu';
import { EdkmError } from '@edkm/core';
import { Command, InvalidArgumentError as CommanderArgError } from 'commander';
import { registerDemo } from './commands/demo';
import { registerEval } from './commands/eval';
import { registerExport } from './commands/export';
import { registerFinetune } from './commands/finetune';
import { registerFlash } from './commands/flash';
import { registerGenerate } from './commands/generate';
import { registerInspect } from './commands/inspect';
import { registerMakeModel } from './commands/make-model';
import type { CliIO } from './commands/options';

const io: CliIO = {
  print: (s) => process.stdout.write(`${s}\n`),
  note: (s) => process.stderr.write(`${s}\n`),
};

export function buildCli(): Command {
  const program = new Command('edkm')
    .description('Train-time weight clustering (eDKM palettization) of LLaMA models')
    .showHelpAfterError()
    .configureOutput({ outputError: (s, write) => write(`edkm: ${s}`) });
  registerFinetune(program, io);
  registerExport(program, io);
  registerEval(program, io);
  registerGenerate(program, io);
  registerFlash(program, io);
  registerMakeModel(program, io);
  registerInspect(program, io);
  registerDemo(program, io);
  return program;
}

/** Runs the CLI; a user error prints one clear line and exits non-zero. */
export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (err) {
    if (err instanceof EdkmError) {
      process.stderr.write(`edkm: error: ${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    if (err instanceof CommanderArgError) {
      process.stderr.write(`edkm: error: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
}
