import { describe, expect, it } from 'vitest';
import { progressLines } from '../src/progress';

describe('progress without a terminal', () => {
  it('prints a line when the step advanced and the interval passed, never a repeat, and the last step at stop', () => {
    const lines: string[] = [];
    let t = 0;
    const p = progressLines(
      (l) => lines.push(l),
      5000,
      () => t,
    );
    const v = (loss: number) => ({ loss, tokensPerSecond: 1000, bytes: 2 ** 20 });
    p.start(30, 0);
    p.update(10, v(3)); // first update: printed
    t = 1000;
    p.update(20, v(2.5)); // within the interval: not printed
    t = 9000;
    p.update(20, v(2.5)); // interval passed: step 20 printed
    t = 20000;
    p.update(20, v(2.5)); // same step again (an export after the last update): no repeat
    p.update(30, v(2)); // advanced and the interval passed
    p.stop(); // already printed: nothing more
    expect(lines).toEqual([
      'step 10/30 | loss 3.0000 | 1000 tok/s | mem 1 MiB\n',
      'step 20/30 | loss 2.5000 | 1000 tok/s | mem 1 MiB\n',
      'step 30/30 | loss 2.0000 | 1000 tok/s | mem 1 MiB\n',
    ]);
    const tail: string[] = [];
    const q = progressLines(
      (l) => tail.push(l),
      5000,
      () => 0,
    );
    q.start(2, 0);
    q.update(1, v(1));
    q.update(2, v(0.5)); // within the interval
    q.stop(); // the last step still shows
    expect(tail.map((l) => l.slice(0, 8))).toEqual(['step 1/2', 'step 2/2']);
  });
});
