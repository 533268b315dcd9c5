#!/usr/bin/env bash
# Issue 25's uses of the int8 tensor cores, in one H200 device call (run from the repo root on the
# GPU machine; scripts/gpu-pack.sh made .gpu/, ../shared/anchors copied to .gpu-anchors/), most
# important first:
#  1. W8A8 prefill of the Llama-2-7B-shaped 3-bit model against our f32 prefill, same decoder
#     (bench/generate.ts --prefill-modes) → $OUT/prefill.json
#  2. the split-precision product against our f32 GEMM and PyTorch's bf16 autocast on the same
#     matrices (bench/split.ts, bench/torch/torch_split_ref.py), and a 7B-shaped layer's forward +
#     backward with EDKM_MATMUL_PRECISION=split beside f32 (bench/layer7b.ts) → $OUT/split.json
#  3. edkm-tiny 3-bit perplexity, exact decoder vs W8A8 (edkm eval --engine) → $OUT/ppl.json
#  4. bench/h200-decode.sh's quick form: the decode GEMV's variants (issue 23) → $OUT/ops.txt,
#     generate beside PyTorch fp16 → $OUT/generate.json, $OUT/torch-generate7b.json, and the int8
#     GEMM's default kernel at issue 25's shapes → $OUT/int8.json
# and $OUT/log.txt (8 files at most come back). STEPS=123 / STEPS=4 split it over two calls of a
# warm machine (default: all).
set -u
R="bash .gpu/run.sh"
TSF=disable-dawn-features=timestamp_quantization
U="EDKM_WEBGPU_UNSAFE=1 EDKM_DAWN_FLAGS=$TSF"
source bench/device-lib.sh
step() { [[ "${STEPS:-1234}" == *$1* ]]; }

# 1. prefill: 2048 tokens, exact then W8A8
if step 1; then
  env $U timeout 120 $R generate --backend webgpu --models 7b3 --prompt 2048 --max-length 2048 \
    --prefill-modes exact,w8a8 >"$OUT/prefill.json" 2>>"$OUT/log.txt"
  rc=$?
  jsononly "$OUT/prefill.json"
  log "prefill rc=$rc $(python3 -c "import json; r=json.load(open('$OUT/prefill.json'))['results'][0]; print({k: round(v['tokensPerSecond']) for k, v in r['modes'].items()}, 'speedup', r['speedup'])" 2>&1)"
fi

# 2. split precision
if step 2; then
  env $U timeout 150 $R split --dump /tmp/split-dump ${SPLIT_ARGS:-} >/tmp/split-ours.json 2>>"$OUT/log.txt"; log "split rc=$?"; jsononly /tmp/split-ours.json
  timeout 90 python3 bench/torch/torch_split_ref.py --dump /tmp/split-dump ${TORCH_SPLIT_ARGS:-} >/tmp/split-torch.json 2>>"$OUT/log.txt"; log "torch-split rc=$?"
  # a 7B-shaped layer's forward + backward with every product split (training's use), f32 beside it
  for pr in f32 split; do
    env $U EDKM_MATMUL_PRECISION=$pr timeout 100 $R layer7b --backend webgpu >/tmp/layer7b-$pr.json 2>>"$OUT/log.txt"; log "layer7b $pr rc=$?"; jsononly /tmp/layer7b-$pr.json
  done
  merge "$OUT/split.json" ours=/tmp/split-ours.json torch=/tmp/split-torch.json \
    layer7b_f32=/tmp/layer7b-f32.json layer7b_split=/tmp/layer7b-split.json
  python3 -c "import json; d=json.load(open('$OUT/split.json')); print('split verdict', json.dumps(d['ours'].get('verdict')), '| torch', json.dumps(d['torch'].get('accuracy', {}).get('bf16Autocast')))" 2>&1 | tee -a "$OUT/log.txt"
fi

# 3. perplexity of a 3-bit edkm-tiny (k-means, post-training) on the last 20,000 characters
if step 3; then
  timeout 30 $R edkm export --model models/edkm-tiny --out /tmp/tiny3 --method kmeans --bits 3 --backend cpu --json >/tmp/export.json 2>>"$OUT/log.txt"; log "export rc=$?"
  tail -c 20000 data/tinyshakespeare/input.txt >/tmp/heldout.txt
  for e in decoder w8a8; do
    env $U timeout 90 $R edkm eval --model /tmp/tiny3 --task ppl --data /tmp/heldout.txt --engine $e --backend webgpu --json >/tmp/ppl-$e.json 2>>"$OUT/log.txt"
    rc=$?
    jsononly /tmp/ppl-$e.json
    log "ppl $e rc=$rc $(cut -c1-120 /tmp/ppl-$e.json)"
  done
  merge "$OUT/ppl.json" decoder=/tmp/ppl-decoder.json w8a8=/tmp/ppl-w8a8.json export=/tmp/export.json
fi

# 4. decode (the GEMV's variants, generate beside PyTorch fp16) and the int8 GEMM's default
# kernel: bench/h200-decode.sh's quick form (ops.txt, generate.json, torch-generate7b.json, int8.json)
if step 4; then
  QUICK=1 INT8_ONLY="${INT8_ONLY:-^staged1-2x2sg-4x4-k64-p16-g16-a1-blk$}" INT8_SECONDS=${INT8_SECONDS:-90} \
    bash bench/h200-decode.sh
fi
log "all done"
