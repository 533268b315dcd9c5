// Run by threads.test.ts in a child process (the thread count is fixed when the backend starts):
// prints the backend's description and a hash of each result's float32 bits.
import { seededRandom, tf, useBackend } from '@edkm/core';
import '../src/index';

const { description } = await useBackend('wasm');
const r = seededRandom(3);
const rand = (n: number) => Float32Array.from({ length: n }, () => r() * 2 - 1);
const fnv = (x: Float32Array) => {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  let h = 0x811c9dc5;
  for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i], 0x01000193) >>> 0;
  return h;
};
const hashes: number[] = [];
for (const [m, k, n] of [
  [256, 288, 768],
  [300, 288, 4096],
  [64, 768, 288],
  [1, 288, 768],
]) {
  const a = tf.tensor2d(rand(m * k), [m, k]);
  const b = tf.tensor2d(rand(k * n), [k, n]);
  for (const y of [
    tf.matMul(a, b),
    tf.matMul(b, a, true, true),
    tf.softmax(tf.matMul(a, b)),
    tf.add(tf.matMul(a, b), 1).sum(0),
  ])
    hashes.push(fnv((await y.data()) as Float32Array));
}
process.stdout.write(`${JSON.stringify({ description, hashes })}\n`);
