// Turns the summary.txt of bench/h200-quality.sh into the quality.json of issue 20.
// Usage: node bench/quality-json.mjs SUMMARY.txt "DEVICE AND DATE" > quality.json
import { readFileSync } from 'node:fs';

const [file, device = ''] = process.argv.slice(2);
if (!file) throw new Error('usage: node bench/quality-json.mjs SUMMARY.txt "device, date"');
const methods = [
  [/^base16$/, () => ({ method: '16-bit', bits: 16 })],
  [/^(rtn|kmeans)(\d)$/, (m) => ({ method: m[1], bits: Number(m[2]) })],
  [/^dkm(\d)$/, (m) => ({ method: 'dkm', bits: Number(m[1]) })],
  [/^jlcm(\d)$/, (m) => ({ method: 'jlcm', bits: Number(m[1]) })],
  [/^ft16$/, () => ({ method: '16-bit fine-tune', bits: 16 })],
  [/^ft16-kmeans(\d)$/, (m) => ({ method: 'fine-tune, then k-means', bits: Number(m[1]) })],
];
const rows = [];
const torch = {};
const failed = [];
for (const line of readFileSync(file, 'utf8').split('\n')) {
  const m = /^(\S+) rc=(\S+) (\d+)s (?:bpw=(\S+) )?ppl=(\S*)/.exec(line);
  if (!m) continue;
  const [, name, rc, seconds, bpw, ppl] = m;
  if (rc !== '0' || !Number.isFinite(Number.parseFloat(ppl))) {
    failed.push(line);
    continue;
  }
  const t = /^torch-dkm(\d)$/.exec(name);
  if (t) {
    torch[`dkm${t[1]}`] = Number(ppl);
    torch[`dkm${t[1]}_seconds`] = Number(seconds);
    continue;
  }
  const kind = methods.find(([re]) => re.test(name));
  if (!kind) continue;
  rows.push({
    ...kind[1](kind[0].exec(name)),
    ppl: Number(Number(ppl).toFixed(3)),
    bitsPerWeight: bpw === undefined ? undefined : Number(Number(bpw).toFixed(3)),
    seconds: Number(seconds),
  });
}
rows.sort((a, b) => a.bits - b.bits || a.method.localeCompare(b.method));
const recipe =
  'edkm-tiny; train on tinyshakespeare minus its last 20,000 characters; 400 steps of 32x256; AdamW lr 1e-4 constant, clip 1, all parameters trained (--train-embeddings); the 42 decoder linears palettized per tensor (JLCM: 4 codebooks, per-row scales); ppl of the last 20,000 characters (window 256, stride 128) of the hard-assigned export as reloaded (edkm export, edkm eval). bench/h200-quality.sh.';
process.stdout.write(
  `${JSON.stringify({ recipe, device, rows, torch, ...(failed.length ? { failed } : {}) }, null, 1)}\n`,
);
