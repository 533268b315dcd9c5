#!/usr/bin/env bash
# The GEMM kernels' variant sweeps in one H200 device call (run from the repo root on the GPU
# machine; scripts/gpu-pack.sh made .gpu/, ../shared/anchors copied to .gpu-anchors/):
#  f32  (issue 21): bench/gemm.ts over $F32_TILES at the LLaMA-7B training shapes in all four
#       transposed forms (F32_DAWN: Dawn flags), PyTorch's f32 (TF32 off) at the same shapes →
#       $OUT/gemm-f32.json
#  int8 (issue 25): bench/int8.ts's variant list ($INT8_ROUND, $INT8_ONLY) at 8192³ and
#       2048×4096×11008, exact against the host (INT8_DAWN: more Dawn flags) → $OUT/int8-sweep.json
#  bw   (issue 23's roof): bench/bandwidth.ts (copies and streaming reads through Dawn) beside
#       PyTorch's copy and read → $OUT/bandwidth.json
#  ops  (issue 23): each decode op of a 7B-shaped 3-bit layer (GPU µs, bench/decode-ops.ts) under
#       the GEMV tiles $GEMV_TILES ("rows×unroll" each): [GPU µs, µs per op in a row] →
#       $OUT/ops.txt
# and $OUT/log.txt. LANES="f32 int8 bw ops" (default: f32 int8) picks them.
set -u
R="bash .gpu/run.sh"
TSF=disable-dawn-features=timestamp_quantization
source bench/device-lib.sh
F32_TILES=${F32_TILES:-8x8x16x16x8,8x8x16x16x8g8,8x8x16x16x8b,8x8x16x16x8g8b,8x8x16x16x8g4b,8x8x16x16x8g16b,8x8x16x16x16g8b}
F32_SHAPES=${F32_SHAPES:-4096x4096x4096,2048x4096x4096,2048x4096x11008,2048x11008x4096}
lane() { [[ " ${LANES:-f32 int8} " == *" $1 "* ]]; }

if lane f32; then
  timeout 60 python3 bench/torch/torch_gemm.py >/tmp/torch-gemm.json 2>>"$OUT/log.txt"
  log "torch-gemm rc=$?"
  EDKM_DAWN_FLAGS="${F32_DAWN:-}" timeout 240 $R gemm --no-stock --tiles "$F32_TILES" --shapes "$F32_SHAPES" >/tmp/gemm-f32.json 2>>"$OUT/log.txt"
  log "gemm rc=$?"
  jsononly /tmp/gemm-f32.json
  merge "$OUT/gemm-f32.json" ours=/tmp/gemm-f32.json torch=/tmp/torch-gemm.json
fi

if lane int8; then
  EDKM_DAWN_FLAGS="$TSF ${INT8_DAWN:-}" timeout 280 $R int8 --round "${INT8_ROUND:-5}" ${INT8_ONLY:+--only "$INT8_ONLY"} \
    --shapes "${INT8_SHAPES:-8192x8192x8192,2048x4096x11008}" --max-seconds "${INT8_SECONDS:-220}" \
    >"$OUT/int8-sweep.json" 2>>"$OUT/log.txt"
  log "int8 rc=$?"
  jsononly "$OUT/int8-sweep.json"
  python3 - "$OUT/int8-sweep.json" <<'PY' 2>&1 | tee -a "$OUT/log.txt"
import json, sys
d = json.load(open(sys.argv[1]))
for r in d.get("results", []):
    if r.get("tops") is not None:
        print(f"{r['variant']:40s} {r['M']}x{r['N']}x{r['K']} {r['tops']} TOPS exact={r['exact']}")
PY
fi
if lane bw; then
  timeout 60 python3 bench/torch/torch_bandwidth.py >/tmp/torch-bw.json 2>>"$OUT/log.txt"
  log "torch-bandwidth rc=$? $(cat /tmp/torch-bw.json)"
  timeout 120 $R bandwidth >/tmp/bw.json 2>>"$OUT/log.txt"
  log "bandwidth rc=$?"
  jsononly /tmp/bw.json
  merge "$OUT/bandwidth.json" ours=/tmp/bw.json torch=/tmp/torch-bw.json
  python3 -c "import json; print(json.load(open('/tmp/bw.json'))['gbps'])" 2>&1 | tee -a "$OUT/log.txt"
fi
if lane ops; then
  for t in ${GEMV_TILES:-16x4 8x4 16x8 8x8}; do
    decode_ops "gemv rows×unroll $t" EDKM_GEMV_RB=${t%x*} EDKM_GEMV_UNROLL=${t#*x}
  done
  log "ops done"
fi
log "all done"
