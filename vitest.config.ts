import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('.', import.meta.url));
const packageDirs = ['packages', 'apps'].flatMap((group) =>
  existsSync(`${root}${group}`)
    ? readdirSync(`${root}${group}`)
        .filter((name) => existsSync(`${root}${group}/${name}/test`))
        .map((name) => `${group}/${name}`)
    : [],
);

export default defineConfig({
  resolve: {
    // tests run against the sources of sibling packages, so a change is tested without a build
    alias: [
      { find: /^@edkm\/core\/testing$/, replacement: `${root}packages/core/src/testing/index.ts` },
      {
        find: /^@edkm\/backend-webgpu\/int8-wgsl$/,
        replacement: `${root}packages/backend-webgpu/src/int8-wgsl.ts`,
      },
      { find: /^@edkm\/([a-z0-9-]+)$/, replacement: `${root}packages/$1/src/index.ts` },
    ],
  },
  test: {
    // tfjs ships extension-less ESM: let vite transform it so that one copy of tfjs-core is loaded
    // server: { deps: { inline: [/@tensorflow\//] } },
    deps: {
      optimizer: {
        ssr: {
          enabled: true,
          include: [
            '@tensorflow/tfjs-core',
            '@tensorflow/tfjs-core/dist/register_all_gradients',
            '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops',
            '@tensorflow/tfjs-backend-cpu',
            '@tensorflow/tfjs-backend-webgpu',
          ],
        },
      },
    },
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      ...packageDirs.map((dir) => ({
        extends: true as const,
        test: { name: dir.split('/')[1], include: [`${dir}/test/**/*.test.ts`] },
      })),
      { extends: true as const, test: { name: 'repo', include: ['tests/**/*.test.ts'] } },
    ],
  },
});
