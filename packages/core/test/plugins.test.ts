import '@edkm/backend-cpu';
import { describe, expect, it } from 'vitest';
import {
  BackendError,
  type EdkmError,
  listPlugins,
  registerPlugin,
  tf,
  useBackend,
} from '../src/index';

describe('backend plugins', () => {
  it('selects a named plugin and says which', async () => {
    const sel = await useBackend('cpu');
    expect(sel.plugin).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
  });

  it('gives a typed error for an unknown plugin', async () => {
    const err = await useBackend('tpu').catch((e) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as EdkmError).code).toBe('BACKEND_UNAVAILABLE');
    expect(String(err.message)).toMatch(/no backend plugin named 'tpu'.*registered: .*cpu/);
  });

  it("'auto' skips plugins whose init fails and reports why", async () => {
    registerPlugin({
      name: 'always-broken',
      tfjsBackend: 'nowhere',
      priority: 100,
      init: () => {
        throw new Error('no such device');
      },
      kernels: [],
    });
    const sel = await useBackend('auto');
    expect(sel.plugin).not.toBe('always-broken');
    expect(sel.skipped).toContainEqual({ plugin: 'always-broken', reason: 'no such device' });
    expect(listPlugins()[0].name).toBe('always-broken');
    const err = await useBackend('always-broken').catch((e) => e);
    expect(err.message).toMatch(/failed to start: no such device/);
  });

  it("'auto' prefers real devices over a software emulation, which it takes only as a last resort", async () => {
    const { MathBackendCPU } = await import('@tensorflow/tfjs-backend-cpu');
    tf.registerBackend('emulated', () => new MathBackendCPU(), -5);
    registerPlugin({
      name: 'emulated-gpu',
      tfjsBackend: 'emulated',
      priority: 50,
      init: () => true,
      kernels: [],
      isSoftware: () => true,
      describe: () => 'a GPU on llvmpipe',
    });
    const sel = await useBackend('auto');
    expect(sel.plugin).toBe('cpu');
    expect(sel.skipped).toContainEqual({
      plugin: 'emulated-gpu',
      reason: 'a GPU on llvmpipe emulates its device in software (select it by name to use it)',
    });
    expect((await useBackend('emulated-gpu')).plugin).toBe('emulated-gpu');
    // with every real device gone, 'auto' falls back to the emulation
    const cpu = listPlugins().find((p) => p.name === 'cpu')!;
    registerPlugin({ ...cpu, init: () => false });
    try {
      expect((await useBackend('auto')).plugin).toBe('emulated-gpu');
    } finally {
      registerPlugin(cpu);
    }
    expect((await useBackend('auto')).plugin).toBe('cpu');
  });
});
