import { InvalidArgumentError, assertIntInRange } from '@edkm/core';

/**
 * A group of neurons computed together: their slots in the layer's neuron memory, and whether
 * they must be read from disk into those slots first.
 */
export interface SlotBatch {
  neurons: Int32Array;
  slots: Int32Array;
  load: boolean;
}

export interface WindowPlan {
  /** In execution order: the cached neurons first, then the loads. */
  batches: SlotBatch[];
  hits: number;
  misses: number;
  /** Neurons dropped from memory by this step (out of the window, or for room). */
  evicted: number;
}

/**
 * The neurons of one FFN layer kept in memory ("windowing", LLM in a flash §3.3): every neuron a
 * token used stays for the next `window` tokens; a new token loads only the neurons it needs that
 * are not there, and neurons no token of the window used are evicted (with `window` = Infinity,
 * nothing is evicted until room is needed: least-recently-used). At most `capacity` neurons
 * are held (the memory budget). When a token needs more neurons than that, they are computed in
 * batches of at most `capacity`, each batch taking the slots of the least recently used neurons
 * (batches run in order: a slot is reused only after the batch that used it was computed).
 */
export class NeuronWindow {
  readonly neurons: number;
  readonly capacity: number;
  readonly window: number;
  /** Slot of each neuron, −1 when not in memory. */
  readonly slotOf: Int32Array;
  /** Neuron in each slot, −1 when free. */
  readonly neuronIn: Int32Array;
  /** Step (token index) that last used the neuron in each slot. */
  private readonly lastUsed: Float64Array;
  private held = 0;

  constructor(neurons: number, capacity: number, window: number) {
    assertIntInRange('neurons', neurons, 1, 2 ** 31 - 1);
    assertIntInRange('capacity', capacity, 1, neurons);
    if (window !== Number.POSITIVE_INFINITY)
      assertIntInRange('window', window, 1, Number.MAX_SAFE_INTEGER);
    this.neurons = neurons;
    this.capacity = capacity;
    this.window = window;
    this.slotOf = new Int32Array(neurons).fill(-1);
    this.neuronIn = new Int32Array(capacity).fill(-1);
    this.lastUsed = new Float64Array(capacity).fill(Number.NEGATIVE_INFINITY);
  }

  /** Neurons in memory now. */
  get size(): number {
    return this.held;
  }

  /**
   * Plans step `step` (the token index; with a prompt of T tokens, its last token's index), which
   * needs `needed` (ascending, distinct). Updates the memory map as if the batches had run.
   */
  plan(step: number, needed: Int32Array): WindowPlan {
    const hitNeurons: number[] = [];
    const hitSlots: number[] = [];
    const misses: number[] = [];
    for (let j = 0; j < needed.length; j++) {
      const n = needed[j];
      if (n < 0 || n >= this.neurons || (j > 0 && n <= needed[j - 1]))
        throw new InvalidArgumentError(
          `needed neurons must be ascending ids in [0, ${this.neurons})`,
        );
      const s = this.slotOf[n];
      if (s >= 0) {
        hitNeurons.push(n);
        hitSlots.push(s);
        this.lastUsed[s] = step;
      } else misses.push(n);
    }
    let evicted = 0;
    // windowing: what no token of the last `window` steps used leaves memory
    for (let s = 0; s < this.capacity; s++)
      if (this.neuronIn[s] >= 0 && this.lastUsed[s] <= step - this.window) {
        this.release(s);
        evicted++;
      }
    const batches: SlotBatch[] = [];
    if (hitNeurons.length)
      batches.push({
        neurons: Int32Array.from(hitNeurons),
        slots: Int32Array.from(hitSlots),
        load: false,
      });
    for (let at = 0; at < misses.length; at += this.capacity) {
      const chunk = misses.slice(at, at + this.capacity);
      const slots = this.freeSlots(chunk.length);
      evicted += slots.evicted;
      chunk.forEach((n, j) => {
        const s = slots.slots[j];
        this.neuronIn[s] = n;
        this.slotOf[n] = s;
        this.lastUsed[s] = step;
        this.held++;
      });
      batches.push({ neurons: Int32Array.from(chunk), slots: slots.slots, load: true });
    }
    return { batches, hits: hitNeurons.length, misses: misses.length, evicted };
  }

  private release(s: number): void {
    this.slotOf[this.neuronIn[s]] = -1;
    this.neuronIn[s] = -1;
    this.lastUsed[s] = Number.NEGATIVE_INFINITY;
    this.held--;
  }

  /** `count` slots: free ones first, then those of the least recently used neurons. */
  private freeSlots(count: number): { slots: Int32Array; evicted: number } {
    const order = Array.from({ length: this.capacity }, (_, s) => s);
    // free slots have lastUsed −∞ and sort first; ties by slot for determinism
    order.sort((a, b) => this.lastUsed[a] - this.lastUsed[b] || a - b);
    const slots = Int32Array.from(order.slice(0, count));
    let evicted = 0;
    for (const s of slots)
      if (this.neuronIn[s] >= 0) {
        this.release(s);
        evicted++;
      }
    return { slots, evicted };
  }
}
