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
run() {
  case $1 in
  tiny) step torch-tiny 120 python3 $A/torch_tiny_throughput.py $M cuda
    step ours-tiny 150 $R llama --backend webgpu --batch 8 --seq 256 --steps 10 --optimizer adamw ;;
  gemm) step torch-gemm 90 python3 $A/torch_matmul_ref.py
    step ours-gemm 150 $R gemm ;;
  layer7b) step torch-layer7b 90 python3 bench/torch/torch_layer7b.py
    step ours-layer7b 150 $R layer7b --backend webgpu ;;
  generate) step ours-generate 200 "$R generate --backend webgpu --models tiny16,tiny3,7b3 >$OUT/generate.json"
    step ours-generate-nograph 200 "$R generate --backend webgpu --models tiny3,7b3 --no-graph >$OUT/generate-nograph.json"
    step torch-generate7b 150 "python3 bench/torch/generate_7b_ref.py >$OUT/generate-torch7b.json" ;;
  # the quality recipe through the app (bench/h200-quality.sh's lanes): ppl and seconds
  recipe) step ours-recipe3 570 "LANES=dkm bash bench/h200-quality.sh 3"
    step torch-recipe3 120 python3 $A/torch_dkm_ablation.py $M $T 3 ;;
  conformance) step conformance 240 $R conformance --backend webgpu ;;
  # issue 22: TinyLlama-1.1B-shaped eDKM fine-tuning beside PyTorch's (f32, bf16 autocast)
  scale) step make-tinyllama 60 $R edkm make-model --preset tinyllama-1.1b --out /tmp/tl
    step ours-tinyllama 200 "$R scale --model /tmp/tl --steps 12 --no-checkpointing --work /tmp/stl --device-memory 139GiB >$OUT/scale-tinyllama.json"
    step torch-tinyllama 150 "python3 bench/torch/scale_torch.py /tmp/tl --steps 12 >$OUT/scale-tinyllama-torch.json" ;;
  # issue 22: a Llama-2-7B-shaped model made, loaded, 20 steps of eDKM, exported, reloaded, generating
  scale7b) step make-7b 90 $R edkm make-model --preset llama-2-7b --out /tmp/l7
    step ours-7b ${LIMIT7B:-480} "$R scale --model /tmp/l7 --steps 20 --work /tmp/s7 --device-memory 139GiB ${SCALE7B_FLAGS:-} >$OUT/scale-7b.json" ;;
  # issue 22: a tiny 3-bit run exported both ways; transformers loads the HF folder (sharded) and
  # its logits are compared with ours on that folder and on the palettized export (bf16 weights:
  # the fp16 LUT entries rounded to bf16; the f32 folder holds the LUT entries exactly)
  hfcheck) step hf-finetune 150 "$R edkm finetune --model $M --data $T --steps 30 --batch 8 --seq 128 --bits 3 --backend webgpu --out /tmp/hfrun"
    step hf-export 60 "$R edkm export --model /tmp/hfrun --out /tmp/hfrun/edkm --backend webgpu && $R edkm export --model /tmp/hfrun --out /tmp/hfrun/hf --format hf --shard-mb 8 --backend webgpu && $R edkm export --model /tmp/hfrun --out /tmp/hfrun/hf32 --format hf --hf-dtype f32 --backend webgpu && ls -l /tmp/hfrun/hf"
    step hf-logits 90 "$R hf-logits --model /tmp/hfrun/hf --backend webgpu --out /tmp/hfrun/ours-hf.json && $R hf-logits --model /tmp/hfrun/edkm --backend webgpu --out /tmp/hfrun/ours-edkm.json"
    step hf-transformers 90 "python3 bench/torch/check_hf_export.py /tmp/hfrun/hf /tmp/hfrun/ours-hf.json /tmp/hfrun/ours-edkm.json --tol 1e-2 | tee $OUT/hf-check.json; python3 bench/torch/check_hf_export.py /tmp/hfrun/hf32 /tmp/hfrun/ours-edkm.json --tol 1e-2 | tee $OUT/hf32-check.json" ;;
  # microseconds per small dispatch: raw Dawn (one submit, every 15, encode only) and tfjs ops
  dispatch) step ours-dispatch 60 "$R dispatch >$OUT/dispatch.json" ;;
  # decode on the tiny model only (16-bit and 3-bit), with host work per token
  generate-tiny) step ours-generate-tiny 120 "$R generate --backend webgpu --models tiny16,tiny3 >$OUT/generate-tiny.json" ;;
  # each op of a 7B-shaped decoder layer timed alone (3-bit linears, batch 1)
  decode-ops) step ours-decode-ops 90 "$R decode-ops >$OUT/decode-ops.json" ;;
  # the same with each op's GPU time from unquantized timestamp queries, with Dawn's robustness on
  # and off, and at edkm-tiny's shape: GPU time against time per op tells kernels from overhead
  decode-ops-ts) export TSF=disable-dawn-features=timestamp_quantization
    step ours-decode-ops-ts 90 "EDKM_DAWN_FLAGS=\$TSF $R decode-ops >$OUT/decode-ops-ts.json"
    step ours-decode-ops-norobust 90 "EDKM_DAWN_FLAGS=\"\$TSF enable-dawn-features=disable_robustness\" $R decode-ops >$OUT/decode-ops-norobust.json"
    step ours-decode-ops-tiny 90 "EDKM_DAWN_FLAGS=\$TSF $R decode-ops --hidden 288 --intermediate 768 --heads 6 --kv-heads 2 --vocab 4096 >$OUT/decode-ops-tiny.json" ;;
  generate-7b) step ours-generate-7b 150 "$R generate --backend webgpu --models 7b3 >$OUT/generate-7b.json" ;;
  *) echo "unknown step $1" >&2 ;;
  esac
}
if [ $# -eq 0 ]; then set -- tiny gemm layer7b generate recipe; fi
for s in "$@"; do run "$s"; done
