#!/usr/bin/env bash
# Variants of the int8 GEMM around SPECS (Int8KernelSpec JSON, one a word; default: around the
# 256×128 tile with 64-byte slices and tile groups of 16) at 8192³ and 2048×4096×11008 without
# Dawn's robustness (ROBUST=1: with it), in one H200 device call (repo root of the GPU machine;
# scripts/gpu-pack.sh made .gpu/): a warm-up pass, then the measured one → $OUT/int8-sweep$TAG-2.json
# (TAG: empty unless given, to keep two sweeps of one call apart), one line a variant and shape on
# stdout.
set -u
R="bash .gpu/run.sh"
source bench/device-lib.sh
F=disable-dawn-features=timestamp_quantization
B='"stages":1,"ahead":1,"bk":64,"sy":8,"sx":1'
SPECS=${SPECS:-"{$B,\"tm\":2,\"tn\":8,\"group\":16} {$B,\"tm\":2,\"tn\":8,\"group\":32} {$B,\"tm\":2,\"tn\":8,\"group\":64} {$B,\"tm\":2,\"tn\":8,\"group\":16,\"pad\":0} {$B,\"tm\":2,\"tn\":8,\"group\":16,\"pad\":32} {\"stages\":1,\"ahead\":1,\"bk\":64,\"sy\":4,\"sx\":2,\"tm\":2,\"tn\":8,\"group\":16} {$B,\"tm\":1,\"tn\":16,\"group\":16} {\"stages\":1,\"ahead\":0,\"bk\":64,\"sy\":8,\"sx\":1,\"tm\":2,\"tn\":8,\"group\":16}"}
args=()
for s in $SPECS; do args+=(--spec "$s"); done
extra=--no-robustness
[ "${ROBUST:-0}" = 1 ] && extra=
for pass in 1 2; do
  EDKM_DAWN_FLAGS=$F timeout 200 $R int8 --round 3 --only '^$' "${args[@]}" \
    --shapes 8192x8192x8192,2048x4096x11008 --max-seconds 170 $extra >"$OUT/int8-sweep${TAG:-}-$pass.json" 2>>"$OUT/log.txt"
  jsononly "$OUT/int8-sweep${TAG:-}-$pass.json"
done
python3 - "$OUT/int8-sweep${TAG:-}-2.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1])).get("results", []):
    print(r["variant"], f'{r["M"]}x{r["N"]}x{r["K"]}', r.get("tops") and round(r["tops"], 1), r.get("exact"), r.get("error", ""))
PY
