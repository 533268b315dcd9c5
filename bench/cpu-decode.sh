#!/usr/bin/env bash
# CPU decoding beside PyTorch in one run (issue 23's CPU target): PyTorch's pure-torch f32 decode
# loop (bench/torch/tiny_decode_cpu.py; Debian's python3-torch works, with OpenBLAS through the
# libblas.so.3 alternative), then ours on the cpu and wasm plugins (bench/generate.ts, edkm-tiny
# 16-bit and 3-bit, prompt 32, 128 new tokens), then PyTorch again. Prints one JSON object.
# Usage (repo root): [PYTHON=/usr/bin/python3] [THREADS=2] bash bench/cpu-decode.sh
set -euo pipefail
PY=${PYTHON:-python3}
THREADS=${THREADS:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$PY bench/torch/tiny_decode_cpu.py models/edkm-tiny "$THREADS" 128 | tail -1 >"$tmp/torch1.json"
for b in cpu wasm; do
  (cd bench && npx tsx generate.ts --backend $b --models tiny16,tiny3 --new 128 2>/dev/null) >"$tmp/$b.json"
done
$PY bench/torch/tiny_decode_cpu.py models/edkm-tiny "$THREADS" 128 | tail -1 >"$tmp/torch2.json"
node -e '
const fs = require("fs");
const dir = process.argv[1];
const json = (f) => { const t = fs.readFileSync(`${dir}/${f}`, "utf8"); return JSON.parse(t.slice(t.indexOf("{"))); };
const torch = [json("torch1.json"), json("torch2.json")].map((t) => t.decode_tokens_per_s);
const ours = {};
for (const b of ["cpu", "wasm"])
  ours[b] = Object.fromEntries(json(`${b}.json`).results.map((r) => [r.model, { decode_tok_s: r.decodeTokensPerSecond, prefill_tok_s: r.prefillTokensPerSecond }]));
const tiny3 = (b) => Object.entries(ours[b]).find(([m]) => m.includes("3-bit"))[1].decode_tok_s;
const best = Math.max(...torch);
console.log(JSON.stringify({
  bench: "cpu-decode",
  machine: { cpus: require("os").cpus().length, load: require("os").loadavg() },
  torch_f32_decode_tok_s: { before_ours: torch[0], after_ours: torch[1], torch: json("torch1.json").torch, threads: json("torch1.json").threads },
  ours,
  ratio_tiny3_vs_best_torch: { cpu: tiny3("cpu") / best, wasm: tiny3("wasm") / best },
}, null, 1));
' "$tmp"
