import { defineConfig } from 'tsup';
import { tsupDefaults } from '../../scripts/tsup-defaults';

// testing imports the package itself by name, so that it shares one module instance with it
export default defineConfig(
  tsupDefaults({ entry: ['src/index.ts', 'src/testing/index.ts'], external: ['@edkm/core'] }),
);
