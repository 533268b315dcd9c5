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
 * A cli-progress bar on stderr with loss, tokens/s, ETA and backend memory. Without a TTY it
 * prints one plain line every few seconds instead of redrawing.
 */
export function progressBar(stream: NodeJS.WriteStream = process.stderr): Progress {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format:
        'step {value}/{total} |{bar}| loss {loss} | {tps} tok/s | ETA {eta_formatted} | mem {mem}',
      barsize: 24,
      etaBuffer: 20,
      noTTYOutput: true,
      notTTYSchedule: 5000,
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

export const silentProgress: Progress = { start() {}, update() {}, stop() {} };
