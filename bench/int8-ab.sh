#!/usr/bin/env bash
# The int8 GEMM's default kernel against its 256×128 neighbour (8 subgroups of 32×128, 64-byte
# slices; the fastest variant without Dawn's robustness in call s4-3) at issue 25's shapes, in one
# H200 device call (from the repo root on the GPU machine; scripts/gpu-pack.sh made .gpu/): twice
# with robustness (the first run warms the GPU: the int8 bench's first timed variant has read
# low), then once without → $OUT/int8-ab-{1,2,norobust}.json.
set -u
R="bash .gpu/run.sh"
source bench/device-lib.sh
F=disable-dawn-features=timestamp_quantization
ONLY='^staged1-8x1sg-(1x8-k128-p16-g8-a1|2x8-k64-p16-g8-a1)$'
G16='{"stages":1,"ahead":1,"bk":64,"sy":8,"sx":1,"tm":2,"tn":8,"group":16}'
SHAPES=8192x8192x8192,2048x4096x11008,2048x11008x4096
for pass in 1 2 norobust; do
  extra=
  [ "$pass" = norobust ] && extra=--no-robustness
  EDKM_DAWN_FLAGS=$F timeout 150 $R int8 --round 3 --only "$ONLY" --spec "$G16" --shapes "$SHAPES" \
    --max-seconds 120 $extra >"$OUT/int8-ab-$pass.json" 2>>"$OUT/log.txt"
  jsononly "$OUT/int8-ab-$pass.json"
  python3 - "$OUT/int8-ab-$pass.json" "$pass" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
d = json.loads(text)
for r in d.get("results", []):
    if r.get("tops"):
        print(sys.argv[2], r["variant"], f'{r["M"]}x{r["N"]}x{r["K"]}', round(r["tops"], 1), r.get("exact"))
PY
done
