import cliProgress from 'cli-progress';

export interface ProgressValues {
  loss: number;
  tokensPerSecond: number;
  bytes: number;
}

/** The training progress display (a bar on a terminal, periodic lines otherwise, or nothing). */
export interface Progress {
  start(total: number, at: number): void;
  update(step: number, v: ProgressValues): void;
  stop(): void;
}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/**
 * A cli-progress bar on stderr with loss, tokens/s, ETA and backend memory. Without a TTY (a log
 * file, CI) it prints a plain line when the step has advanced and `everyMs` have passed, and the
 * last step at the end: a long export after the last step adds no repeated lines.
 */
export function progressBar(stream: NodeJS.WriteStream = process.stderr, everyMs = 5000): Progress {
  if (!stream.isTTY) return progressLines((s) => stream.write(s), everyMs);
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format:
        'step {value}/{total} |{bar}| loss {loss} | {tps} tok/s | ETA {eta_formatted} | mem {mem}',
      barsize: 24,
      etaBuffer: 20,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  return {
    start: (total, at) => bar.start(total, at, { loss: '-', tps: '-', mem: '-' }),
    update: (step, v) =>
      bar.update(step, {
        loss: v.loss.toFixed(4),
        tps: v.tokensPerSecond.toFixed(0),
        mem: mb(v.bytes),
      }),
    stop: () => bar.stop(),
  };
}

/** The plain-line progress of progressBar without a terminal (`write` gets whole lines). */
export function progressLines(
  write: (line: string) => void,
  everyMs = 5000,
  now: () => number = () => performance.now(),
): Progress {
  let total = 0;
  let printed = -1;
  let last: { step: number; v?: ProgressValues } = { step: 0 };
  let at = Number.NEGATIVE_INFINITY;
  const line = (step: number, v?: ProgressValues) =>
    `step ${step}/${total} | loss ${v ? v.loss.toFixed(4) : '-'} | ${v ? v.tokensPerSecond.toFixed(0) : '-'} tok/s | mem ${v ? mb(v.bytes) : '-'}\n`;
  const print = () => {
    write(line(last.step, last.v));
    printed = last.step;
    at = now();
  };
  return {
    start(t, step) {
      total = t;
      last = { step };
    },
    update(step, v) {
      last = { step, v };
      if (step !== printed && now() - at >= everyMs) print();
    },
    stop() {
      if (last.step !== printed && last.v) print();
    },
  };
}

export const silentProgress: Progress = { start() {}, update() {}, stop() {} };
