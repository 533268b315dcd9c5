// Reports the WebGPU adapter that useBackend('webgpu') takes and a float32 matmul speed.
// Usage: tsx gpu-info.ts [--size 4096] [--reps 20]
import '@edkm/backend-webgpu';
import { getWebGPUDeviceInfo } from '@edkm/backend-webgpu';
import { tf, useBackend } from '@edkm/core';
import { argNumber, printJson } from './util';

const size = argNumber('size', 4096);
const reps = argNumber('reps', 20);
const selection = await useBackend('webgpu');
const a = tf.randomNormal([size, size]);
const b = tf.randomNormal([size, size]);
const run = async () => {
  const c = tf.matMul(a, b);
  await c.data(); // forces completion
  c.dispose();
};
await run(); // compile + warm-up
const t0 = performance.now();
for (let i = 0; i < reps; i++) {
  const c = tf.matMul(a, b);
  if (i === reps - 1) await c.data();
  c.dispose();
}
const seconds = (performance.now() - t0) / 1000;
printJson({
  bench: 'gpu-info',
  backend: selection.description,
  adapter: getWebGPUDeviceInfo(),
  matmul: {
    size,
    reps,
    msPerMatmul: (seconds / reps) * 1000,
    tflops: (2 * size ** 3 * reps) / seconds / 1e12,
  },
});
