import type * as tf from '@tensorflow/tfjs-core';
import { DecodeKernelNames } from './decode';
import { Int8KernelNames } from './int8';
import { KernelNames } from './kernels';
import { LinearKernelNames } from './linear';
import { NearestKernelNames } from './nearest';
import { NormKernelNames } from './norm';
import { OptimKernelNames } from './optim';
import type { PluginKernel } from './plugins';
import { TableKernelNames } from './table';

/**
 * Every custom kernel a backend plugin must implement, by name: the union of the per-area name
 * tables (KernelNames, TableKernelNames, LinearKernelNames, DecodeKernelNames, NormKernelNames,
 * OptimKernelNames, NearestKernelNames, Int8KernelNames). docs/plugins.md lists each one's contract.
 */
export const PluginKernelNames = {
  ...KernelNames,
  ...TableKernelNames,
  ...LinearKernelNames,
  ...DecodeKernelNames,
  ...NormKernelNames,
  ...OptimKernelNames,
  ...NearestKernelNames,
  ...Int8KernelNames,
} as const;

/** The name of a kernel every plugin must implement. */
export type PluginKernelName = (typeof PluginKernelNames)[keyof typeof PluginKernelNames];

/**
 * A plugin's implementation of every custom kernel: a kernel left out (or a name that is not one)
 * is a compile error, not a failure at run time.
 */
export type KernelTable = Record<PluginKernelName, tf.KernelFunc>;

/**
 * The `kernels` list of a BackendPlugin from its complete kernel table, plus `overrides`: tfjs's
 * own kernels that the plugin replaces or adds for its backend ('BatchMatMul', ...).
 */
export function pluginKernels(
  table: KernelTable,
  overrides: Readonly<Record<string, tf.KernelFunc>> = {},
): PluginKernel[] {
  return [...Object.entries(table), ...Object.entries(overrides)].map(
    ([kernelName, kernelFunc]) => ({ kernelName, kernelFunc }),
  );
}
