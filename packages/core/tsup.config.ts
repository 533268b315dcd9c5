import { defineConfig } from 'tsup';
import { tsupDefaults } from '../../scripts/tsup-defaults';

// testing imports the package itself by name, so that it shares one module instance with it; the
// d.ts keeps tfjs's chained-op type augmentations (t.sum(), ...) visible to every consumer
export default defineConfig(
  tsupDefaults({
    entry: ['src/index.ts', 'src/testing/index.ts'],
    external: ['@edkm/core'],
    dts: {
      banner:
        '/// <reference types="@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops" />',
    },
  }),
);
