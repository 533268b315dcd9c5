import { defineConfig } from 'tsup';
import { tsupDefaults } from '../../scripts/tsup-defaults';

export default defineConfig(tsupDefaults({ entry: ['src/index.ts'] }));
