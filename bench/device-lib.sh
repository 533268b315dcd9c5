# Shell functions of the H200 device scripts (sourced by bench/h200-*.sh and bench/gemv-ab.sh).
# $OUT is the folder whose files come back.
# log LINE...: to stdout and $OUT/log.txt
log() { echo "$*" | tee -a "$OUT/log.txt"; }
# jsononly FILE: keep only the last JSON document of FILE (Dawn prints shader-compilation warnings
# and validation messages on stdout, before the bench's JSON); what came before goes to the log
jsononly() {
  python3 - "$1" "$OUT/log.txt" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
starts = [i for i in range(len(text)) if text[i] == "{" and (i == 0 or text[i - 1] == "\n")]
for i in reversed(starts):
    try:
        doc, _ = json.JSONDecoder().raw_decode(text[i:])
    except ValueError:
        continue
    if text[:i].strip():
        open(sys.argv[2], "a").write(f"[{sys.argv[1]}: before its JSON]\n{text[:i][-4000:]}\n")
    json.dump(doc, open(sys.argv[1], "w"), indent=1)
    break
PY
}
merge() { # merge.py OUT name=path ...: one JSON object of the named files (or their error)
  python3 - "$@" <<'PY'
import json, os, sys
out = {}
for a in sys.argv[2:]:
    k, p = a.split("=", 1)
    try:
        out[k] = json.load(open(p))
    except Exception as e:
        out[k] = {"error": repr(e), "text": open(p).read()[-3000:] if os.path.exists(p) else None}
json.dump(out, open(sys.argv[1], "w"), indent=1)
PY
}
# decode_ops LABEL [VAR=VALUE ...]: each decode op of a 7B-shaped 3-bit layer (bench/decode-ops.ts)
# under those variables, with unquantized timestamps, as one line {op: [GPU µs, µs per op in a
# row]} under "=== LABEL" in $OUT/ops.txt (sourced with R set to the runner, e.g. bash .gpu/run.sh)
decode_ops() {
  local label=$1
  shift
  echo "=== $label" >>"$OUT/ops.txt"
  env EDKM_DAWN_FLAGS=disable-dawn-features=timestamp_quantization "$@" \
    timeout 100 $R decode-ops ${DECODE_OPS_ARGS:-} >/tmp/decode-ops.json 2>/dev/null
  jsononly /tmp/decode-ops.json
  python3 -c "import json; d = json.load(open('/tmp/decode-ops.json')); print(json.dumps({o['op']: [round(o['gpuMicroseconds'], 1), round(o['microseconds'], 1)] for o in d['ops']}))" >>"$OUT/ops.txt" 2>>"$OUT/log.txt"
}
# decode_7b LABEL [VAR=VALUE ...]: the 7B-shaped 3-bit decode (bench/generate.ts; DECODE_MODEL
# picks another of its models, e.g. tiny3) under those variables as one line on stdout: LABEL,
# tokens/s, GB/s, share of the streaming-read roof
decode_7b() {
  local label=$1
  shift
  env "$@" timeout 100 $R generate --backend webgpu --models ${DECODE_MODEL:-7b3} >/tmp/decode-7b.json 2>/dev/null
  jsononly /tmp/decode-7b.json
  python3 -c "import json; r = json.load(open('/tmp/decode-7b.json'))['results'][0]; print('$label', r['decodeTokensPerSecond'], r['achievedGBps'], r.get('fractionOfStreamRead'), 'replay', r.get('replayOnly'))" 2>>"$OUT/log.txt"
}
# vars VARIANT: a comma-separated list of EDKM_GEMV_ variables without the prefix (others by their
# whole name, EDKM_...; + for a comma inside a value), or - for none → VAR=VALUE words
vars() {
  [ "$1" = - ] && return
  local IFS=,
  for kv in $1; do
    case $kv in
    EDKM_*) echo "${kv//+/,}" ;;
    *) echo "EDKM_GEMV_${kv//+/,}" ;;
    esac
  done
}
