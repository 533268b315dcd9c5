// `edkm inspect`: what a model folder, export or checkpoint holds.
import { formatInspection, inspect } from '@edkm/palettized';
import type { Command } from 'commander';
import type { CliIO } from './options';

export function registerInspect(program: Command, { print }: CliIO): void {
  program
    .command('inspect')
    .description('what a model folder, export or checkpoint holds')
    .argument('<path>', 'a folder or a .safetensors file')
    .option('--json', 'print as JSON', false)
    .action((path: string, o) => {
      const info = inspect(path);
      print(o.json ? JSON.stringify(info) : formatInspection(info));
    });
}
