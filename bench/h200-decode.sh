#!/usr/bin/env bash
# This round's decode/int8/layer measurements in one H200 device call (run from the repo root on
# the GPU machine; scripts/gpu-pack.sh made .gpu/, ../shared/anchors copied to .gpu-anchors/):
# each decode op of a 7B-shaped layer under the GEMV (tile, prefetch) and
# attention variants, generate (ours and PyTorch's, same call), a 7B-shaped layer's forward +
# backward (ours recorded and replayed, PyTorch's), and the int8 tensor-core variants
# (INT8_ONLY=REGEX: those variants only). Writes $OUT/{ops.txt,generate*.json,torch-*.json,
# layer7b.json,int8.json} and $OUT/log.txt (7 files: the device returns at most 8).
# bench/h200-int8.sh runs its QUICK form after issue 25's int8 measurements.
set -u
R="bash .gpu/run.sh"
A=.gpu-anchors
TSF=disable-dawn-features=timestamp_quantization
source bench/device-lib.sh
# QUICK=1: fewer variants and no layer step (a short device budget)
# variant: rb unroll subgroup-attention gemv-switches (a+b: EDKM_GEMV_A=1 EDKM_GEMV_B=1; -: none)
VARIANTS=("16 4 auto -" "8 4 auto -" "16 8 auto -" "32 4 auto -" "16 4 off -")
[ "${QUICK:-0}" = 1 ] && VARIANTS=("16 4 auto -" "16 8 auto -" "16 4 off -")
for v in "${VARIANTS[@]}"; do
  set -- $v
  sw=()
  for o in ${4//+/ }; do [ "$o" = - ] || sw+=("EDKM_GEMV_${o^^}=1"); done
  decode_ops "rb=$1 unroll=$2 subgroup-attention=$3 gemv=$4" ${sw[@]+"${sw[@]}"} \
    EDKM_GEMV_RB=$1 EDKM_GEMV_UNROLL=$2 EDKM_SUBGROUP_ATTENTION=$3
done
log "ops done"
timeout 150 $R generate --backend webgpu --models ${GEN_MODELS:-tiny16,tiny3,7b3} >"$OUT/generate.json" 2>>"$OUT/log.txt"; log "generate rc=$?"
for v in ${GEN_VARIANTS:-GRID=0}; do
  env EDKM_GEMV_$v timeout 100 $R generate --backend webgpu --models 7b3 2>/dev/null |
    python3 -c "import json,sys; d=json.load(sys.stdin); print('generate $v', json.dumps([(r['model'], r['decodeTokensPerSecond'], r['achievedGBps']) for r in d['results']]))" >>"$OUT/log.txt"
done
timeout 150 python3 bench/torch/generate_7b_ref.py >"$OUT/torch-generate7b.json" 2>>"$OUT/log.txt"; log "torch-generate7b rc=$?"
[ "${QUICK:-0}" = 1 ] || timeout 120 python3 $A/torch_tiny_throughput.py models/edkm-tiny cuda >>"$OUT/log.txt" 2>&1; log "torch-tiny rc=$?"
[ "${QUICK:-0}" = 1 ] || EDKM_DAWN_FLAGS=$TSF timeout 120 $R layer7b --backend webgpu --profile >"$OUT/layer7b.json" 2>>"$OUT/log.txt"; log "layer7b rc=$?"
[ "${QUICK:-0}" = 1 ] || timeout 90 python3 bench/torch/torch_layer7b.py >"$OUT/torch-layer7b.json" 2>>"$OUT/log.txt"; log "torch-layer7b rc=$?"
timeout 200 $R int8 ${INT8_ONLY:+--only "$INT8_ONLY"} --max-seconds ${INT8_SECONDS:-170} >"$OUT/int8.json" 2>/tmp/int8.err; log "int8 rc=$?"
grep "tops=" /tmp/int8.err | awk '{split($NF,a,"="); print a[2], $2, $3}' | sort -rn | head -12 | tee -a "$OUT/log.txt"
