/** Longest stretch of async work without an event-loop turn that `breathe` lets through. */
const SLICE_MS = 50;
let last = 0;

/**
 * Lets timers and I/O run if the caller has kept the event loop busy for over 50 ms: a long
 * computation whose awaits all resolve as microtasks (the cpu backend's `data()` does) otherwise
 * never yields — progress bars stall, signals wait, and a test runner's heartbeats time out. Costs
 * nothing when called more often than that (one clock read), one `setImmediate` (Node) or
 * zero-delay timeout (browsers) per slice otherwise.
 */
export async function breathe(): Promise<void> {
  const now = performance.now();
  if (now - last < SLICE_MS) return;
  const immediate = (globalThis as { setImmediate?: (f: () => void) => unknown }).setImmediate;
  await new Promise<void>((resolve) => (immediate ? immediate(resolve) : setTimeout(resolve, 0)));
  last = performance.now();
}
