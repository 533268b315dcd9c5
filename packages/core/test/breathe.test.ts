import { describe, expect, it } from 'vitest';
import { breathe } from '../src/index';

describe('breathe', () => {
  it('lets a timer fire during a long run of microtask-only awaits, and is free when called often', async () => {
    let fired = false;
    setTimeout(() => {
      fired = true;
    }, 0);
    const t0 = performance.now();
    // ~150 ms of work whose awaits resolve as microtasks (as the cpu backend's data() does)
    while (performance.now() - t0 < 150 && !fired) {
      await Promise.resolve();
      await breathe();
    }
    expect(fired).toBe(true);
    // without breathe the same loop never lets the timer run
    let starved = false;
    setTimeout(() => {
      starved = true;
    }, 0);
    const t1 = performance.now();
    while (performance.now() - t1 < 80) await Promise.resolve();
    expect(starved).toBe(false);
    await new Promise((r) => setTimeout(r, 0));
    expect(starved).toBe(true);
  });
});
