import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NeuronWindow } from '../src/index';

const N = 40;
const stepsArb = fc.array(
  fc
    .uniqueArray(fc.integer({ min: 0, max: N - 1 }), { maxLength: N })
    .map((a) => Int32Array.from(a.sort((x, y) => x - y))),
  { minLength: 1, maxLength: 25 },
);

describe('NeuronWindow', () => {
  it('stays within capacity, loads only what is missing, and every batch finds its neurons in its slots', () => {
    fc.assert(
      fc.property(
        stepsArb,
        fc.integer({ min: 1, max: N }),
        fc.integer({ min: 1, max: 6 }),
        (steps, capacity, window) => {
          const w = new NeuronWindow(N, capacity, window);
          // what the slots hold if the batches are executed in order (the engine's data)
          const memory = new Int32Array(capacity).fill(-1);
          steps.forEach((needed, step) => {
            const before = new Set(
              Array.from({ length: N }, (_, n) => n).filter((n) => w.slotOf[n] >= 0),
            );
            const plan = w.plan(step, needed);
            expect(w.size).toBeLessThanOrEqual(capacity);
            const loaded = plan.batches.filter((b) => b.load).flatMap((b) => [...b.neurons]);
            const computed = plan.batches.flatMap((b) => [...b.neurons]).sort((a, b) => a - b);
            // every needed neuron is computed exactly once; only those not in memory are read
            expect(computed).toEqual([...needed]);
            expect(loaded.sort((a, b) => a - b)).toEqual([...needed].filter((n) => !before.has(n)));
            expect(plan.hits + plan.misses).toBe(needed.length);
            for (const b of plan.batches) {
              expect(b.slots.length).toBe(b.neurons.length);
              expect(new Set(b.slots).size).toBe(b.slots.length);
              expect(b.neurons.length).toBeLessThanOrEqual(capacity);
              b.neurons.forEach((n, j) => {
                if (b.load) memory[b.slots[j]] = n;
                expect(memory[b.slots[j]]).toBe(n);
              });
            }
            // the map agrees with the simulated memory
            for (let n = 0; n < N; n++) if (w.slotOf[n] >= 0) expect(memory[w.slotOf[n]]).toBe(n);
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('holds exactly the neurons of the last `window` tokens when they fit', () => {
    fc.assert(
      fc.property(stepsArb, fc.integer({ min: 1, max: 5 }), (steps, window) => {
        const w = new NeuronWindow(N, N, window); // capacity for every neuron: no eviction for room
        steps.forEach((needed, step) => {
          const plan = w.plan(step, needed);
          const recent = new Set(
            steps.slice(Math.max(0, step - window + 1), step + 1).flatMap((s) => [...s]),
          );
          const held = Array.from({ length: N }, (_, n) => n).filter((n) => w.slotOf[n] >= 0);
          expect(held).toEqual([...recent].sort((a, b) => a - b));
          if (step > 0) {
            // neurons of the window before this step that this step did not need were kept
            const kept = steps.slice(Math.max(0, step - window + 1), step).flatMap((s) => [...s]);
            for (const n of kept) expect(w.slotOf[n]).toBeGreaterThanOrEqual(0);
          }
          expect(plan.batches.filter((b) => b.load).length).toBeLessThanOrEqual(1);
        });
      }),
      { numRuns: 200 },
    );
  });

  it('with an infinite window nothing leaves memory until room is needed', () => {
    fc.assert(
      fc.property(stepsArb, (steps) => {
        const w = new NeuronWindow(N, N, Number.POSITIVE_INFINITY);
        steps.forEach((needed, step) => expect(w.plan(step, needed).evicted).toBe(0));
        const seen = new Set(steps.flatMap((s) => [...s]));
        expect(w.size).toBe(seen.size);
      }),
      { numRuns: 100 },
    );
  });

  it('a token needing more than the capacity is computed in batches of at most the capacity', () => {
    const w = new NeuronWindow(10, 3, 2);
    const all = Int32Array.from({ length: 10 }, (_, i) => i);
    const first = w.plan(0, all);
    expect(first.batches.map((b) => [...b.neurons])).toEqual([
      [0, 1, 2],
      [3, 4, 5],
      [6, 7, 8],
      [9],
    ]);
    expect(w.size).toBe(3);
    const second = w.plan(1, all);
    // 7, 8, 9 are still there (hits, computed first); the rest streams through the LRU slots
    expect([...second.batches[0].neurons]).toEqual([7, 8, 9]);
    expect(second.batches[0].load).toBe(false);
    expect(second.misses).toBe(7);
  });

  it('evicts what the window no longer covers', () => {
    const w = new NeuronWindow(10, 10, 2);
    w.plan(0, Int32Array.from([1, 2]));
    w.plan(1, Int32Array.from([3]));
    expect(w.size).toBe(3);
    const p = w.plan(2, Int32Array.from([3, 4]));
    expect(p.evicted).toBe(2); // 1 and 2 were used two tokens ago
    expect([w.slotOf[1], w.slotOf[2]]).toEqual([-1, -1]);
    expect(() => w.plan(3, Int32Array.from([4, 3]))).toThrow(/ascending/);
    expect(() => new NeuronWindow(10, 11, 1)).toThrow(/capacity/);
  });
});
