#!/usr/bin/env bash
# Decode-GEMV variants A/B in one H200 device call (from the repo root on the GPU machine;
# scripts/gpu-pack.sh made .gpu/): each decode op of a 7B-shaped 3-bit layer (GPU µs and µs per
# op, bench/decode-ops.ts) under each of OPS, then the 7B-shaped decode under each of DECODE in
# turn, twice (A/B/A/B) → $OUT/ops.txt. A variant is a comma-separated list of EDKM_GEMV_
# variables without the prefix (other variables by their whole name, EDKM_...), or - for the
# defaults: OPS="- LUT=shuffle,UNROLL=4 ABLATE=noload+nolut EDKM_ATTENTION_BOUNDED=0" (+ stands
# for a comma inside a value); OPS=none: no decode-ops run; DECODE_MODEL=tiny3: decode edkm-tiny
# 3-bit instead; CHECK="GRID=0 ABLATE=nomask …": first the GEMV's conformance cases under each of those
# (bench/conformance.ts --only EdkmPaletteMatMul, or CHECK_KERNELS: passed and cases a line).
set -u
R="bash .gpu/run.sh"
source bench/device-lib.sh
OPS=${OPS:--}
DECODE=${DECODE:--}
[ "$OPS" = none ] && OPS=
for v in ${CHECK:-}; do
  env $(vars "$v") timeout 120 $R conformance --backend webgpu --only ${CHECK_KERNELS:-EdkmPaletteMatMul} >/tmp/check.json 2>>"$OUT/log.txt"
  jsononly /tmp/check.json
  python3 -c "import json; d = json.load(open('/tmp/check.json')); print('check $v', d['passed'], d['kernels']['cases'], [f.get('name', f) for f in d['kernels']['failures']][:4])" >>"$OUT/ops.txt" 2>>"$OUT/log.txt"
done
for v in $OPS; do
  decode_ops "$v" $(vars "$v")
done
for round in 1 2; do
  for v in $DECODE; do decode_7b "generate 7b3 $v" $(vars "$v") >>"$OUT/ops.txt"; done
done
cat "$OUT/ops.txt"
