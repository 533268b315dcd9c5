import type { EvalResult } from './evaluate';
import type { Progress } from './model';

const fmt = (v: number | null | undefined, digits = 4): string =>
  v === null || v === undefined ? 'N/A' : Number.isFinite(v) ? v.toFixed(digits) : String(v);

/** A plain-text table of results, one line per metric (like the harness's summary table). */
export function formatTable(results: EvalResult[]): string {
  const rows: string[][] = [['Task', 'n', 'Metric', 'Value', '', 'Stderr']];
  for (const r of results) {
    if (r.task === 'ppl') {
      rows.push([r.task, String(r.scoredTokens), 'ppl', fmt(r.ppl), '', '']);
      rows.push(['', '', 'nll', fmt(r.nll), '', '']);
      continue;
    }
    rows.push([r.task, String(r.n), 'acc', fmt(r.acc), '±', fmt(r.acc_stderr)]);
    if (r.acc_norm !== undefined) {
      rows.push(['', '', 'acc_norm', fmt(r.acc_norm), '±', fmt(r.acc_norm_stderr)]);
    }
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const numeric = [false, true, false, true, false, true];
  return rows
    .map((row) =>
      row
        .map((cell, c) => (numeric[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * An `onProgress` callback that redraws one status line (`task score 120/480 25% 3.1/s ETA 1m56s`)
 * on a stream, e.g. `process.stderr`; the app may use a progress-bar library instead.
 */
export function progressLine(
  stream: { write(s: string): unknown; isTTY?: boolean } = process.stderr,
): (p: Progress) => void {
  let start = 0;
  let last = 0;
  return (p) => {
    const now = performance.now();
    if (p.done === 0) start = now;
    const finished = p.done === p.total;
    if (!finished && now - last < 200) return;
    last = now;
    const rate = p.done / Math.max((now - start) / 1000, 1e-9);
    const eta = rate > 0 ? (p.total - p.done) / rate : 0;
    const pct = p.total ? Math.floor((100 * p.done) / p.total) : 100;
    const line = `${p.task} ${p.phase} ${p.done}/${p.total} ${pct}% ${rate.toFixed(1)}/s ETA ${Math.round(eta)}s`;
    stream.write(
      stream.isTTY ? `\r${line}\u001b[K${finished ? '\n' : ''}` : finished ? `${line}\n` : '',
    );
  };
}
