#!/usr/bin/env bash
# The 3-bit quality recipe in variants, side by side on the one GPU, to locate a quality difference:
# each VARIANT is NAME=RUNNER|ENV|EXTRA-FLAGS (e.g. 'nocache=bash .gpu/run.sh|EDKM_WEBGPU_HOST_CACHE=0|').
# Logs: $OUT/<name>.log; $OUT/summary.txt: each run's final loss and exported ppl.
set -u
M=models/edkm-tiny
T=data/tinyshakespeare/input.txt
V=data/eval/shakespeare-val.txt
STEPS=${STEPS:-400}
bash .gpu/run.sh gpu-info >/dev/null 2>&1 # unpack Node and Dawn once
for spec in "$@"; do
  name=${spec%%=*}
  IFS='|' read -r runner envs extra <<<"${spec#*=}"
  (
    d=/tmp/v-$name
    t0=$(date +%s)
    # shellcheck disable=SC2086
    timeout ${LIMIT:-570} env $envs bash -c "$runner edkm finetune --model $M --data $T --bits 3 --steps $STEPS --batch 32 --seq 256 --lr 1e-4 --warmup 0 --min-lr-ratio 1 --clip 1 --train-embeddings --holdout-chars 20000 --out $d --backend webgpu --json $extra && $runner edkm export --model $d --out $d/model --backend webgpu && $runner edkm eval --model $d/model --task ppl --data $V --backend webgpu --json" >"$OUT/$name.log" 2>&1
    echo "$name rc=$? $(($(date +%s) - t0))s $(grep -ho '"finalLoss":[0-9.]*' "$OUT/$name.log") $(grep -ho '"ppl":[0-9.]*' "$OUT/$name.log")" >>"$OUT/summary.txt"
  ) &
done
wait
cat "$OUT/summary.txt"
