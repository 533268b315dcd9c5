#!/usr/bin/env bash
# The quality table's recipe runs of one device call, side by side on the one GPU (our training is
# host-bound: separate processes overlap): ours at 2, 3 and 4 bits (and, with .gpu/run-old.sh
# present, the 3-bit recipe built at another commit), and the PyTorch reference at 2, 3 and 4 bits
# in sequence. Each run logs to $OUT/<name>.log; $OUT/summary.txt has every ppl and time.
# Usage (repo root, GPU machine): bash bench/h200-quality.sh [BITS...] (default 2 3 4)
set -u
M=models/edkm-tiny
T=data/tinyshakespeare/input.txt
V=data/eval/shakespeare-val.txt
LIMIT=${LIMIT:-570}
export PYTHONUNBUFFERED=1
ours() { # NAME RUNNER BITS
  local d=/tmp/q-$1 t0
  t0=$(date +%s)
  {
    $2 edkm finetune --model $M --data $T --bits "$3" --steps 400 --batch 32 --seq 256 --lr 1e-4 \
      --warmup 0 --min-lr-ratio 1 --clip 1 --train-embeddings --holdout-chars 20000 --out $d \
      --backend webgpu --json &&
      $2 edkm export --model $d --out $d/model --backend webgpu &&
      $2 edkm eval --model $d/model --task ppl --data $V --backend webgpu --json
  } >"$OUT/$1.log" 2>&1
  echo "$1 rc=$? $(($(date +%s) - t0))s $(grep -h '"ppl"' "$OUT/$1.log" | tail -1)" >>"$OUT/summary.txt"
}
torch() {
  for b in "$@"; do
    local t0
    t0=$(date +%s)
    python3 .gpu-anchors/torch_dkm_ablation.py $M $T "$b" >>"$OUT/torch.log" 2>&1
    echo "torch$b rc=$? $(($(date +%s) - t0))s $(grep -h '"dkm_hard"' "$OUT/torch.log" | tail -1)" >>"$OUT/summary.txt"
  done
}
# unpack Node and Dawn once before the runs start in parallel
bash .gpu/run.sh gpu-info >"$OUT/gpu-info.json" 2>&1
bits=("$@")
[ ${#bits[@]} -eq 0 ] && bits=(2 3 4)
for b in "${bits[@]}"; do timeout $LIMIT bash -c "$(declare -f ours); OUT=$OUT M=$M T=$T V=$V ours ours$b 'bash .gpu/run.sh' $b" & done
[ -x .gpu/run-old.sh ] && { timeout $LIMIT bash -c "$(declare -f ours); OUT=$OUT M=$M T=$T V=$V ours old3 'bash .gpu/run-old.sh' 3" & }
timeout $LIMIT bash -c "$(declare -f torch); OUT=$OUT M=$M T=$T torch 3 ${bits[*]/3/}" &
wait
cat "$OUT/summary.txt"
