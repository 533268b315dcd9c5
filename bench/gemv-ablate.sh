#!/usr/bin/env bash
# What bounds the decode GEMV, in one H200 device call (from the repo root on the GPU machine;
# scripts/gpu-pack.sh made .gpu/): each decode op of a 7B-shaped 3-bit layer (GPU µs and µs per op,
# bench/decode-ops.ts) with parts of the GEMV left out (EDKM_GEMV_ABLATE: measurement only) and
# its row sums as a subgroupAdd a row or a butterfly (EDKM_GEMV_REDUCE), then the 7B-shaped decode
# with each sum, A/B/A/B → $OUT/ops.txt. VARIANTS="ablate:reduce:unroll ..." picks them.
set -u
R="bash .gpu/run.sh"
source bench/device-lib.sh
VARIANTS=${VARIANTS:--:add:8 noload:add:8 noload,nolut:add:8 noload,nolut,nosum:add:8 -:butterfly:8 -:butterfly:16}
for v in $VARIANTS; do
  IFS=: read -r A F U <<<"$v"
  [ "$A" = - ] && A=
  decode_ops "ablate=$A reduce=$F unroll=$U" EDKM_GEMV_UNROLL=$U EDKM_GEMV_REDUCE=$F EDKM_GEMV_ABLATE=$A
done
for F in add butterfly add butterfly; do
  decode_7b "generate 7b3 reduce=$F" EDKM_GEMV_REDUCE=$F >>"$OUT/ops.txt"
done
cat "$OUT/ops.txt"
