#!/usr/bin/env bash
# Issue 23's record in one H200 device call (from the repo root on the GPU machine;
# scripts/gpu-pack.sh made .gpu/, ../shared/anchors copied to .gpu-anchors/): our generate
# (edkm-tiny 16-bit and 3-bit, the Llama-2-7B-shaped 3-bit export; bench/generate.ts) beside
# PyTorch's in the same call (transformers `generate` on edkm-tiny in f32, fp16 on the 7B shape),
# then the 7B-shaped decode under each of DECODE's variants (bench/device-lib.sh's `vars`) A/B/A/B
# and each decode op with the defaults → $OUT/{ours.json,torch-generate7b.json,torch-tiny.json,
# ops.txt,log.txt}. `python3 bench/generate-json.py OUT` composes generate.json from them.
set -u
R="bash .gpu/run.sh"
A=.gpu-anchors
source bench/device-lib.sh
timeout 200 $R generate --backend webgpu --models ${GEN_MODELS:-tiny16,tiny3,7b3} >"$OUT/ours.json" 2>>"$OUT/log.txt"
log "generate rc=$?"
jsononly "$OUT/ours.json"
timeout 150 python3 bench/torch/generate_7b_ref.py >"$OUT/torch-generate7b.json" 2>>"$OUT/log.txt"
log "torch-generate7b rc=$?"
timeout 150 python3 $A/torch_tiny_throughput.py models/edkm-tiny cuda >"$OUT/torch-tiny.json" 2>>"$OUT/log.txt"
log "torch-tiny rc=$?"
for round in 1 2; do
  for v in ${DECODE:-}; do decode_7b "generate 7b3 $v" $(vars "$v") >>"$OUT/ops.txt"; done
done
decode_ops "defaults"
cat "$OUT/ops.txt"
