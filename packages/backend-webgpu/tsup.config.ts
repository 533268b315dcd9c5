import { defineConfig } from 'tsup';
import { tsupDefaults } from '../../scripts/tsup-defaults';

export default defineConfig(
  tsupDefaults({
    // int8-wgsl: the int8 GEMM's WGSL generator alone (bench/int8.ts imports it without tfjs)
    entry: { index: 'src/index.ts', 'int8-wgsl': 'src/int8-wgsl.ts' },
  }),
);
