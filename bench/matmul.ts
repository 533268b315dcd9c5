// GFLOP/s of tfjs matrix products per backend and layout (the shapes of edkm-tiny's training step).
// Usage: tsx matmul.ts [--backend wasm] [--reps 5]. CPU seconds (process.cpuUsage) beside wall
// seconds: on a shared machine the CPU figure is the steadier one.
import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import '@edkm/backend-webgpu';
import { tf, useBackend } from '@edkm/core';
import { argNumber, argValue, printJson } from './util';

const selection = await useBackend(argValue('backend') ?? 'wasm');
const reps = argNumber('reps', 5);
const shapes: [number, number, number][] = [
  [2048, 288, 768],
  [2048, 768, 288],
  [768, 2048, 288],
  [2048, 288, 4096],
  [1, 288, 768],
];
const results = [];
for (const [m, k, n] of shapes) {
  for (const [ta, tb] of [
    [false, false],
    [false, true],
    [true, false],
  ] as const) {
    const a = tf.randomNormal(ta ? [k, m] : [m, k]);
    const b = tf.randomNormal(tb ? [n, k] : [k, n]);
    const run = () => {
      const c = tf.matMul(a, b, ta, tb);
      c.dataSync();
      c.dispose();
    };
    run();
    const inner = m === 1 ? 200 : 1;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let r = 0; r < reps * inner; r++) run();
    const wall = (performance.now() - t0) / 1000;
    const cu = process.cpuUsage(c0);
    const cpu = (cu.user + cu.system) / 1e6;
    const flop = 2 * m * k * n * reps * inner;
    results.push({
      shape: `${m}×${k}×${n}`,
      layout: `${ta ? 'Aᵀ' : 'A'}·${tb ? 'Bᵀ' : 'B'}`,
      gflopsWall: +(flop / wall / 1e9).toFixed(2),
      gflopsCpu: +(flop / cpu / 1e9).toFixed(2),
    });
    tf.dispose([a, b]);
  }
}
printJson({ bench: 'matmul', backend: selection.description, reps, results });
