"""Composes issue 23's generate.json from one device call of bench/h200-generate.sh.

Usage: python3 bench/generate-json.py OUT_DIR LABEL > generate.json
OUT_DIR holds ours.json (bench/generate.ts), torch-generate7b.json, torch-tiny.json and ops.txt;
LABEL names the call. The summary sets each of the issue's criteria beside its target."""
import json
import os
import sys

out, label = sys.argv[1], sys.argv[2]
ours = json.load(open(os.path.join(out, "ours.json")))
torch7b = json.load(open(os.path.join(out, "torch-generate7b.json")))
tiny_lines = [l for l in open(os.path.join(out, "torch-tiny.json")) if l.startswith("{")]
torch_tiny = json.loads(tiny_lines[-1])
ab = [l.split() for l in open(os.path.join(out, "ops.txt")) if l.startswith("generate 7b3")]
by = {r["model"]: r for r in ours["results"]}


def pick(prefix):
    return next(r for m, r in by.items() if m.startswith(prefix))


tiny3 = pick("edkm-tiny 3-bit")
b7 = pick("Llama-2-7B-shaped 3-bit")
res = b7["resident"]
summary = {
    "tiny_3bit_decode_tok_s": round(tiny3["decodeTokensPerSecond"], 1),
    "torch_tiny_f32_generate_tok_s": torch_tiny["generate_tokens_per_s"],
    "tiny_ratio": round(tiny3["decodeTokensPerSecond"] / torch_tiny["generate_tokens_per_s"], 2),
    "tiny_target": "ratio >= 3",
    "llama2_7b_shape_3bit_decode_tok_s": round(b7["decodeTokensPerSecond"], 1),
    "llama2_7b_shape_3bit_achieved_GBps": round(b7["achievedGBps"], 1),
    "llama2_7b_shape_3bit_fraction_of_stream_read": b7.get("fractionOfStreamRead"),
    "torch_fp16_7b_decode_tok_s": torch7b["decode_tokens_per_s"],
    "target_7b": 400,
    "resident_weight_GB": round(res["weightBytes"] / 1e9, 3),
    "kv_cache_GB": round(res["kvCacheBytes"] / 1e9, 3),
    "resident_target": "weights <= 3.5 GB plus the KV cache",
    "decode_7b_ab_same_call": [[a[2], float(a[3])] for a in ab],
    # the recorded step replayed back to back (device time) beside generate's ms a token
    "llama2_7b_shape_decode_step_ms": round(b7["decodeStepMs"], 3),
    "llama2_7b_shape_replay_only": b7.get("replayOnly"),
}
json.dump(
    {
        "device": f"NVIDIA H200, one device call ({label}: bash bench/h200-generate.sh), PyTorch {torch7b.get('torch')} in the same call",
        "ours": ours,
        "torch_7b_fp16": torch7b,
        "torch_tiny_f32": torch_tiny,
        "summary": summary,
    },
    sys.stdout,
    indent=1,
)
print()
