#!/usr/bin/env bash
# Issue 25's split product on the H200 in one device call: training's path (tf.matMul under
# setMatMulPrecision('split')) with three int8 products against the fused kernel
# (EdkmInt8SplitMatMul, both accumulator sets in one dispatch) and its variants, each beside our
# f32 GEMM (bench/split.ts, `precision`); PyTorch's bf16 autocast on the same matrices
# (bench/torch/torch_split_ref.py); a 7B-shaped layer forward + backward, split against f32
# (bench/layer7b.ts; LAYER_SPEC: its fused variant); NO_TORCH=1 leaves PyTorch out. Files: $OUT/split-<variant>.json, torch-split.json, layer7b.json, log.txt.
# Run from the repo root on the GPU machine (scripts/gpu-pack.sh made .gpu/, the anchors in
# .gpu-anchors/).
set -u
R="bash .gpu/run.sh"
U="EDKM_WEBGPU_UNSAFE=1 EDKM_DAWN_FLAGS=disable-dawn-features=timestamp_quantization"
source bench/device-lib.sh
summary() { # one line: the training path's graph speedups over f32, per shape
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], [(r['shape'], (r.get('precision') or {}).get('graph', {}).get('speedup'), (r.get('precision') or {}).get('graph', {}).get('tflops')) for r in d['speed']])" "$1" "$2" 2>&1 | tee -a "$OUT/log.txt"
}
SMALL="--error-shapes 128x128x128 --error-rows 4 --no-steps"
# name | EDKM_SPLIT_KERNEL | EDKM_INT8_SPLIT_SPEC | extra flags (one a line; SPLIT_VARIANTS replaces
# the list)
DEFAULT_VARIANTS='three|three||--dump /tmp/split-dump --no-steps
fused|fused||SMALL
fused-k32|fused|{"bk":32}|SMALL
fused-g16|fused|{"group":16}|SMALL
fused-4x2sg-2x4|fused|{"sy":4,"sx":2,"tm":2,"tn":4}|SMALL'
mapfile -t VARIANTS <<<"${SPLIT_VARIANTS:-$DEFAULT_VARIANTS}"
# INT8_SPECS (one JSON a line): the int8 GEMM's bench with these variants only → $OUT/int8.json
if [ -n "${INT8_SPECS:-}" ]; then
  args=()
  while read -r sp; do [ -n "$sp" ] && args+=(--spec "$sp"); done <<<"$INT8_SPECS"
  env $U timeout 200 $R int8 --only '^none$' --max-seconds ${INT8_SECONDS:-150} "${args[@]}" >"$OUT/int8.json" 2>/tmp/int8.err
  log "int8 rc=$?"
  jsononly "$OUT/int8.json"
  grep "tops=" /tmp/int8.err | awk '{split($NF,a,"="); print a[2], $2, $3}' | sort -rn | head -20 | tee -a "$OUT/log.txt"
fi
for v in "${VARIANTS[@]}"; do
  IFS='|' read -r name kernel spec flags <<<"$v"
  flags=${flags/SMALL/$SMALL}
  f="$OUT/split-$name.json"
  env $U EDKM_SPLIT_KERNEL=$kernel EDKM_INT8_SPLIT_SPEC="$spec" timeout 120 $R split $flags >"$f" 2>>"$OUT/log.txt"
  log "split $name rc=$?"
  jsononly "$f"
  summary "$f" "$name"
done
if [ -z "${NO_TORCH:-}" ]; then
  timeout 90 python3 bench/torch/torch_split_ref.py --dump /tmp/split-dump >"$OUT/torch-split.json" 2>>"$OUT/log.txt"
  log "torch-split rc=$?"
fi
for pr in f32 split; do
  env $U EDKM_MATMUL_PRECISION=$pr EDKM_INT8_SPLIT_SPEC="${LAYER_SPEC:-}" timeout 100 $R layer7b --backend webgpu >/tmp/layer7b-$pr.json 2>>"$OUT/log.txt"
  log "layer7b $pr rc=$?"
  jsononly /tmp/layer7b-$pr.json
  log "layer7b $pr graphMs $(python3 -c "import json; print(json.load(open('/tmp/layer7b-$pr.json')).get('graphMs'))" 2>&1)"
done
merge "$OUT/layer7b.json" f32=/tmp/layer7b-f32.json split=/tmp/layer7b-split.json
log "all done"
