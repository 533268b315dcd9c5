import type { Options } from 'tsup';

/**
 * Build settings shared by every package: ESM + CJS + .d.ts. tfjs-core's gradient registrations
 * ship only as extension-less ESM files, which bare Node cannot load, so that one import is
 * bundled; everything else from node_modules stays external.
 */
export function tsupDefaults(overrides: Options = {}): Options {
  return {
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    sourcemap: true,
    target: 'node20',
    splitting: false,
    shims: true,
    noExternal: [/@tensorflow\/tfjs-core\/dist\/(register_all_gradients|public\/chained_ops)/],
    ...overrides,
  };
}
