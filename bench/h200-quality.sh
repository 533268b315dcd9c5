#!/usr/bin/env bash
# The quality table (issue 20) in one device call, lanes side by side on the one GPU (our training
# is host-bound: separate processes overlap). Every row is a perplexity of the hard-assigned export
# as reloaded (edkm eval), on the held-out last 20,000 characters of tinyshakespeare:
#   base    16-bit, and post-training RTN and k-means of the shipped model at each of BITS
#   dkmB    eDKM fine-tuning at B bits (the recipe below), one lane per B
#   ft16    the same recipe without palettization (--bits 16), then k-means of it at each of BITS
#   jlcmB   JLCM fine-tuning at B bits (4 codebooks, per-row scales), one lane per B in $JLCM
#   cfg     fine-tuning with each palettizer config file in $CONFIGS (the lane is named after the
#           file, e.g. bench/configs/dkm2-g96.json: 2-bit DKM, one LUT per 96 rows)
#   torch   PyTorch's DKM reference (../shared/anchors/torch_dkm_ablation.py) at each of BITS
# Each lane logs to $OUT/<lane>.log; $OUT/summary.txt has one line per row: name, exit status,
# seconds, bits per weight and the ppl. bench/quality-json.mjs turns it into quality.json.
# Usage (repo root, GPU machine): [JLCM="2"] [CONFIGS="F..."] [LANES="base dkm ft16 jlcm torch"] bash bench/h200-quality.sh [BITS...]
set -u
M=models/edkm-tiny
T=data/tinyshakespeare/input.txt
V=data/eval/shakespeare-val.txt
LIMIT=${LIMIT:-570}
JLCM=${JLCM:-2}
LANES=${LANES:-base dkm ft16 jlcm torch}
E="bash .gpu/run.sh edkm"
export PYTHONUNBUFFERED=1
RECIPE="--data $T --steps ${STEPS:-400} --batch ${BATCH:-32} --seq ${SEQ:-256} --lr 1e-4 --warmup 0 --min-lr-ratio 1 --clip 1 --train-embeddings --holdout-chars 20000 --backend webgpu --json"

# row NAME LOG T0 RC: one summary line from the last eval in LOG
row() {
  local bpw ppl
  ppl=$(grep -ho '"ppl":[0-9.]*' "$2" | tail -1 | cut -d: -f2)
  bpw=$(grep -ho '"bitsPerPalettizedWeight":[0-9.]*' "$2" | tail -1 | cut -d: -f2)
  [ "${bpw:-0}" = 0 ] && bpw=16 # a dense (16-bit) model
  echo "$1 rc=$4 $(($(date +%s) - $3))s bpw=$bpw ppl=${ppl:-none}" >>"$OUT/summary.txt"
}
# evalrow NAME DIR LOG T0: evaluate an export and record its row
evalrow() {
  $E eval --model "$2" --task ppl --data $V --backend webgpu --json >>"$3" 2>&1
  row "$1" "$3" "$4" $?
}
# train NAME FLAGS...: fine-tune with the recipe, export, evaluate
train() {
  local name=$1 d=/tmp/q-$1 t0 log=$OUT/$1.log
  shift
  t0=$(date +%s)
  $E finetune --model $M $RECIPE --out $d ${RESUME:+--resume} "$@" >"$log" 2>&1 &&
    $E export --model $d --out $d/model --backend webgpu --json >>"$log" 2>&1 &&
    evalrow "$name" $d/model "$log" "$t0" || row "$name" "$log" "$t0" fail
  [ "$name" = ft16 ] || return 0
  for b in $BITS; do # fine-tune, then post-training k-means
    t0=$(date +%s)
    $E export --model $d --out $d/kmeans$b --method kmeans --bits "$b" --backend webgpu --json >>"$log" 2>&1 &&
      evalrow "ft16-kmeans$b" $d/kmeans$b "$log" "$t0"
  done
}
base() {
  local t0 log=$OUT/base.log
  t0=$(date +%s)
  evalrow base16 $M "$log" "$t0"
  for b in $BITS; do
    for m in rtn kmeans; do
      t0=$(date +%s)
      $E export --model $M --out /tmp/q-base/$m$b --method $m --bits "$b" --backend webgpu --json >>"$log" 2>&1 &&
        evalrow "$m$b" /tmp/q-base/$m$b "$log" "$t0"
    done
  done
}
torchref() {
  local t0
  for b in $BITS; do
    t0=$(date +%s)
    python3 .gpu-anchors/torch_dkm_ablation.py $M $T "$b" >>"$OUT/torch.log" 2>&1
    echo "torch-dkm$b rc=$? $(($(date +%s) - t0))s ppl=$(grep -ho '"dkm_hard": *[0-9.]*' "$OUT/torch.log" | tail -1 | grep -o '[0-9.]*$')" >>"$OUT/summary.txt"
  done
}
jlcmconfig() { # BITS → a config file: JLCM on every decoder linear, the LM head 16-bit
  echo "{\"global\": {\"method\": \"jlcm\", \"bits\": $1, \"codebooks\": 4}, \"byName\": {\"lm_head.weight\": null}}" >/tmp/jlcm$1.json
  echo /tmp/jlcm$1.json
}

BITS="$*"
[ -z "$BITS" ] && BITS="3 2 4"
export OUT M T V E RECIPE BITS
# unpack Node and Dawn once before the lanes start in parallel
bash .gpu/run.sh gpu-info >"$OUT/gpu-info.json" 2>&1
lane() { timeout "$LIMIT" bash -c "$(declare -f row evalrow train base torchref jlcmconfig); $*" & }
for l in $LANES; do
  case $l in
    base) lane base ;;
    dkm) for b in $BITS; do lane train dkm$b --bits "$b"; done ;;
    ft16) lane train ft16 --bits 16 --save-every 400 ;;
    jlcm) for b in $JLCM; do lane "train jlcm$b --save-every 100 --config \$(jlcmconfig $b)"; done ;;
    cfg) for f in ${CONFIGS:-}; do lane train "$(basename "$f" .json)" --config "$f"; done ;;
    torch) lane torchref ;;
  esac
done
wait
sort "$OUT/summary.txt"
