#!/usr/bin/env bash
# This round's H200 measurements in one device call, ours beside PyTorch's (run from the repo root
# on the GPU machine; `scripts/gpu-pack.sh` made .gpu/, ../shared/anchors copied to .gpu-anchors/).
# Each step is time-boxed and appends to $OUT/all.log under a "=== name" header; $OUT/steps.txt
# has each step's exit code and seconds. Usage: bash bench/h200-round.sh [STEP ...] (default: all)
set -u
R="bash .gpu/run.sh"
A=.gpu-anchors
M=models/edkm-tiny
T=data/tinyshakespeare/input.txt
export PYTHONUNBUFFERED=1 R A M T
step() {
  local name=$1 limit=$2
  shift 2
  local t0
  t0=$(date +%s)
  echo "=== $name: $*" >>"$OUT/all.log"
  timeout "$limit" bash -c "$*" >>"$OUT/all.log" 2>&1
  echo "$name rc=$? $(($(date +%s) - t0))s" | tee -a "$OUT/steps.txt"
}
# recipe BITS [STEPS [NAME]]: the quality recipe through the app, then export and eval
recipe() {
  local d="/tmp/${3:-recipe$1}"
  $R edkm finetune --model $M --data $T --bits "$1" --steps "${2:-400}" --batch 32 --seq 256 \
    --lr 1e-4 --warmup 0 --min-lr-ratio 1 --clip 1 --train-embeddings --holdout-chars 20000 \
    --out "$d" --backend webgpu --json &&
    $R edkm export --model "$d" --out "$d/model" --backend webgpu &&
    $R edkm eval --model "$d/model" --task ppl --data data/eval/shakespeare-val.txt --backend webgpu --json
}
export -f recipe
run() {
  case $1 in
  tiny) step torch-tiny 120 python3 $A/torch_tiny_throughput.py $M cuda
    step ours-tiny 150 $R llama --backend webgpu --batch 8 --seq 256 --steps 10 --optimizer adamw ;;
  gemm) step torch-gemm 90 python3 $A/torch_matmul_ref.py
    step ours-gemm 150 $R gemm ;;
  layer7b) step torch-layer7b 90 python3 bench/torch/torch_layer7b.py
    step ours-layer7b 150 $R layer7b --backend webgpu ;;
  generate) step ours-generate 200 $R generate --backend webgpu --models tiny16,tiny3,7b3
    step torch-generate7b 150 python3 bench/torch/generate_7b_ref.py ;;
  recipe) step ours-recipe3 420 recipe 3
    step torch-recipe3 120 python3 $A/torch_dkm_ablation.py $M $T 3 ;;
  conformance) step conformance 240 $R conformance --backend webgpu ;;
  regress) step ours-recipe3-100 200 recipe 3 100 r100
    step ours-recipe3-100-stock 200 "export EDKM_MATMUL_ROUTE=stock; recipe 3 100 r100s" ;;
  # the same recipe built at another commit (.gpu/run-old.sh, its bundle packed beside ours), and
  # each build's export of the other's run: where a difference between builds comes from
  xcheck) step old-recipe3-100 200 "R='bash .gpu/run-old.sh'; recipe 3 100 o100"
    step ours-recipe3-100 200 recipe 3 100 r100
    step ours-export-of-old 100 "$R edkm export --model /tmp/o100 --out /tmp/o100/x --backend webgpu && $R edkm eval --model /tmp/o100/x --task ppl --data data/eval/shakespeare-val.txt --backend webgpu --json"
    step old-export-of-ours 100 "bash .gpu/run-old.sh edkm export --model /tmp/r100 --out /tmp/r100/x --backend webgpu && $R edkm eval --model /tmp/r100/x --task ppl --data data/eval/shakespeare-val.txt --backend webgpu --json" ;;
  recipe24) step ours-recipe2 420 recipe 2
    step ours-recipe4 420 recipe 4 ;;
  *) echo "unknown step $1" >&2 ;;
  esac
}
if [ $# -eq 0 ]; then set -- tiny gemm layer7b generate recipe; fi
for s in "$@"; do run "$s"; done
