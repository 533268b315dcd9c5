import { DeviceLimitError, InvalidArgumentError } from '@edkm/core';

/**
 * WebGPU's default `maxComputeWorkgroupsPerDimension`: a dispatch of more workgroups than this
 * along x is a validation error (the command buffer is dropped and nothing runs), which one
 * workgroup per row × head reaches at 2,048 tokens × 32 heads.
 */
export const MAX_GROUPS_PER_DIMENSION = 65535;

let perDimension = MAX_GROUPS_PER_DIMENSION;

/**
 * Testing hook: fold grids at `n` workgroups per dimension instead of 65,535 (undefined restores
 * it), so that small shapes take the two-dimensional grids that long prompts need.
 */
export function setMaxGroupsPerDimension(n?: number): void {
  if (n !== undefined && !(Number.isInteger(n) && n >= 1 && n <= MAX_GROUPS_PER_DIMENSION))
    throw new InvalidArgumentError(`workgroups per dimension must be 1..65535, got ${n}`);
  perDimension = n ?? MAX_GROUPS_PER_DIMENSION;
}

/**
 * `n` workgroups indexed linearly, as an x × y grid within the per-dimension limit. The shader
 * takes its index with `linearGroupWgsl` (raw WGSL) or TFJS_LINEAR_GROUP (a tfjs program); the
 * grid's last row may run past n.
 */
export function linearGroups(n: number, what: string): [number, number, number] {
  const y = Math.ceil(n / perDimension);
  if (y > perDimension)
    throw new DeviceLimitError(
      `${what}: ${n} workgroups are over the ${perDimension}² a dispatch can have`,
    );
  return [Math.max(1, Math.min(n, perDimension)), Math.max(1, y), 1];
}

/**
 * WGSL (u32): the linear index of workgroup `wg` in a `linearGroups` grid of `nwg` workgroups (the
 * `workgroup_id` and `num_workgroups` builtins: uniform, so a shader may return early past n).
 */
export const linearGroupWgsl = (wg = 'wg', nwg = 'nwg') => `(${wg}.y * ${nwg}.x + ${wg}.x)`;

/**
 * The same index (i32) in a tfjs program's WGSL (its `workgroupId`/`numWorkgroups` globals). Those
 * are not uniform to WGSL's analysis, so a program clamps the index instead of returning early.
 */
export const TFJS_LINEAR_GROUP = 'i32(workgroupId.y * numWorkgroups.x + workgroupId.x)';
