import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { getWebGPUDeviceInfo } from '@edkm/backend-webgpu';
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

/**
 * The int8 tensor cores (WebGPU subgroup matrices) sit behind Dawn's unsafe APIs, which the webgpu
 * plugin asks for when it starts with EDKM_WEBGPU_UNSAFE=1. A command whose flag `flag` uses them
 * sets it (saying so through `log`) before its backend starts, unless the user set it either way.
 */
export function askForTensorCores(
  backend: string,
  flag: string,
  log: (line: string) => void,
): void {
  if (
    (backend === 'webgpu' || backend === 'auto') &&
    process.env.EDKM_WEBGPU_UNSAFE === undefined
  ) {
    process.env.EDKM_WEBGPU_UNSAFE = '1';
    log(`${flag}: asking Dawn for its unsafe APIs (subgroup matrices, the int8 tensor cores)`);
  }
}

/** Whether the started webgpu backend has int8 tensor cores (false on every other backend). */
export function hasTensorCores(plugin: string): boolean {
  return plugin === 'webgpu' && getWebGPUDeviceInfo()?.subgroupMatrix === true;
}
