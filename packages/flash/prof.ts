import '@edkm/backend-cpu';
import { tf, useBackend } from '@edkm/core';
import { defaultModelDir, loadLlama } from '@edkm/llama';
import { openFlash } from './src/index';
await useBackend('cpu');
const { model } = loadLlama(defaultModelDir());
const ids = Array.from({ length: 256 }, (_, i) => 3 + ((i * 17) % 4000));
for (let r = 0; r < 2; r++) {
  const t = performance.now();
  model.forward([ids]).dispose();
  console.log('ref', performance.now() - t);
}
const flash = await openFlash('/tmp/flash-tiny');
for (let r = 0; r < 2; r++) {
  const t = performance.now();
  (await flash.forward(ids)).dispose();
  console.log('flash', performance.now() - t);
}
flash.onFfnInput = (l, x) => {
  const t = performance.now();
  const m = tf.matMul(x, x, true, false);
  m.dataSync();
  m.dispose();
  console.log('gram', performance.now() - t);
};
{
  const t = performance.now();
  (await flash.forward(ids)).dispose();
  console.log('flash+gram', performance.now() - t);
}
