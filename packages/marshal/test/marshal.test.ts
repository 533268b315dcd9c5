import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import '@edkm/backend-webgpu';
import { Worker } from 'node:worker_threads';
import { InvalidArgumentError, MemoryLedger, StateError, tf, useBackend } from '@edkm/core';
import { testBackends } from '@edkm/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { Marshaler, deserialize } from '../src/index';

const backends = await testBackends();

describe.each(backends)('marshaler on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it('offloads a saved tensor to the host and loads it back bit-exactly', async () => {
    const ledger = new MemoryLedger();
    const m = new Marshaler({ ledger });
    const t = tf.tensor2d([1.5, -2, 3e-8, 4], [2, 2]);
    const h = m.save(t);
    t.dispose();
    await m.flush();
    expect(m.stats()).toMatchObject({
      deviceBytes: 0,
      hostBytes: 16,
      copies: 1,
      bytesOffloaded: 16,
    });
    const back = m.load(h);
    expect(back.shape).toEqual([2, 2]);
    expect(Array.from(await back.data())).toEqual(
      Array.from(Float32Array.from([1.5, -2, 3e-8, 4])),
    );
    back.dispose();
    m.release(h);
    expect(m.stats()).toMatchObject({ hostBytes: 0, entries: 0 });
    expect(ledger.report().counters).toMatchObject({ copies: 1, bytesOffloaded: 16 });
  });

  it('copies a tensor once when it is saved again through a view, and dedupes equal contents', async () => {
    const m = new Marshaler();
    const a = tf.tensor1d([1, 2, 3, 4, 5, 6]);
    const h1 = m.save(a);
    const h2 = m.save(a.reshape([2, 3])); // a view: same data buffer
    const b = tf.add(tf.tensor1d([0, 1, 2, 3, 4, 5]), 1); // same contents, another op
    const h3 = m.save(b);
    await m.flush();
    const s = m.stats();
    expect(s.copies).toBe(1);
    expect(s.bytesDeduplicated).toBe(24);
    expect(s.hostBytes).toBe(24); // b's entry shares a's host copy
    m.release(h1);
    expect(Array.from(await m.load(h2).data())).toEqual([1, 2, 3, 4, 5, 6]);
    m.release(h2);
    m.release(h3);
    expect(m.stats().entries).toBe(0);
  });

  it('keeps small tensors on the device with aboveBytes and respects a device budget', async () => {
    const m = new Marshaler({ policy: { aboveBytes: 100 } });
    const small = m.save(tf.ones([4]));
    const big = m.save(tf.ones([1000]));
    await m.flush();
    expect(m.stats().deviceBytes).toBe(16);
    const budget = new Marshaler({ policy: 'never', maxDeviceBytes: 8000 });
    const hs = [budget.save(tf.ones([1000])), budget.save(tf.ones([1500]))];
    await budget.flush();
    expect(budget.stats().deviceBytes).toBeLessThanOrEqual(8000);
    expect(budget.stats().hostBytes).toBe(6000); // the largest went to the host
    expect(() =>
      new Marshaler({ policy: 'never', maxDeviceBytes: 10 }).save(tf.ones([100])),
    ).toThrow(/below one saved tensor/);
    for (const h of [small, big]) m.release(h);
    for (const h of hs) budget.release(h);
  });
});

describe('marshaler misuse', () => {
  it('gives clear errors for released or foreign handles and bad options', async () => {
    await useBackend('cpu');
    const m = new Marshaler();
    const other = new Marshaler();
    const h = m.save(tf.ones([2]));
    expect(() => other.load(h)).toThrow(/belongs to another marshaler/);
    m.release(h);
    expect(() => m.load(h)).toThrow(StateError);
    expect(() => m.release(h)).toThrow(/was released/);
    expect(() => new Marshaler({ maxDeviceBytes: -1 })).toThrow(InvalidArgumentError);
    expect(() => m.saveHost(new Int32Array(3), [2, 2])).toThrow(/do not fill shape/);
  });

  it('serialises a saved index shard to a worker thread and back', async () => {
    await useBackend('cpu');
    const m = new Marshaler();
    const h = m.saveHost(Int32Array.from([5, 0, 7, 7, 1]), [5], 'int32');
    const s = await m.serialize(h);
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       parentPort.on('message', (msg) => { const a = new Int32Array(msg.buffer); for (let i = 0; i < a.length; i++) a[i] *= 2; parentPort.postMessage(msg, [msg.buffer]); });`,
      { eval: true },
    );
    const back = await new Promise<typeof s>((resolve) => {
      worker.once('message', resolve);
      worker.postMessage(s, [s.buffer]);
    });
    await worker.terminate();
    expect(Array.from(await deserialize(back).data())).toEqual([10, 0, 14, 14, 2]);
  });
});

describe('16-bit index lists', () => {
  it('keeps a Uint16Array index list at 2 bytes per entry and loads it as int32', async () => {
    await useBackend('cpu');
    const m = new Marshaler();
    const rows = Uint16Array.from([65535, 0, 7, 40000, 1]);
    const h = m.saveHost(rows, [5], 'int32');
    expect(m.stats().hostBytes).toBe(10);
    const t = m.load(h);
    expect(t.dtype).toBe('int32');
    expect(Array.from(await t.data())).toEqual([65535, 0, 7, 40000, 1]);
    t.dispose();
    // a 32-bit list with other bytes is not confused with it
    const wide = m.saveHost(Int32Array.from([65535, 0, 7, 40000, 1]), [5], 'int32');
    expect(m.stats().hostBytes).toBe(30);
    const s = await m.serialize(h);
    expect(s.buffer.byteLength).toBe(10);
    const back = deserialize(s);
    expect(Array.from(await back.data())).toEqual([65535, 0, 7, 40000, 1]);
    back.dispose();
    m.release(h);
    m.release(wide);
  });
});

describe('leaks', () => {
  it('100 save/load/release cycles leave tensors and host bytes flat', async () => {
    await useBackend('cpu');
    const m = new Marshaler();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) {
      const t = tf.randomNormal([64]);
      const h = m.save(t);
      t.dispose();
      if (i % 10 === 0) await m.flush();
      m.load(h).dispose();
      m.release(h);
    }
    await m.flush();
    expect(tf.memory().numTensors).toBe(before);
    expect(m.stats()).toMatchObject({ hostBytes: 0, deviceBytes: 0, entries: 0 });
  });
});
