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
});
