import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type BackendSelection, InvalidArgumentError, useBackend } from '@edkm/core';

/**
 * One line that says which backend runs, and with `--backend auto` which plugins it passed over
 * and why (e.g. WebGPU without a Vulkan loader, or on a software rasteriser).
 */
export function describeSelection(selection: BackendSelection): string {
  const skipped = selection.skipped
    .map(({ plugin, reason }) => {
      const oneLine = reason.replace(/\s*\n\s*/g, ' ').trim();
      return oneLine.startsWith(`${plugin}:`) ? oneLine : `${plugin}: ${oneLine}`;
    })
    .join('; ');
  return `backend: ${selection.description}${skipped ? `; passed over ${skipped}` : ''}`;
}

/**
 * Starts a backend for a command, after the command has checked its arguments. With 'auto' it
 * reports the choice in one line through `log` (the commands' stderr), so that a user knows where
 * the work runs; a backend named explicitly starts quietly.
 */
export async function startBackend(
  name: string,
  log?: (line: string) => void,
): Promise<BackendSelection> {
  const selection = await useBackend(name);
  if (name === 'auto') log?.(describeSelection(selection));
  return selection;
}

/** `--model` must name a model folder: checked before a backend starts. */
export function requireModelFolder(dir: string, flag = '--model'): void {
  if (!existsSync(join(dir, 'config.json')))
    throw new InvalidArgumentError(`${flag} ${dir} is not a model folder (no config.json)`);
}
