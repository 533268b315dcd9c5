#!/usr/bin/env python3
"""Issue 25's record (int8.json) from one H200 call's files: int8-gemm.json (bench/int8.ts, the
default round, robustness on), prefill.json, split.json and ppl.json (bench/h200-int8.sh, STEPS=123).

Usage: python3 bench/int8-json.py DIR "call NAME" [SPLIT_VARIANT_JSON ...] > int8.json
The GEMM criterion reads the plugin's default kernel (the first variant of the default round), not
the best variant; the split variants (bench/h200-split.sh's split-*.json, possibly of later calls)
are listed beside the recorded default's speedups.
"""
import json
import os
import sys

TARGETS = {"8192x8192x8192": 500, "2048x4096x11008": 300}


def load(d, name):
    with open(os.path.join(d, name)) as f:
        return json.load(f)


def gemm(g):
    default = g["variants"][0]["name"]
    tops, exact, variants = {}, True, {}
    for r in g["results"]:
        shape = f'{r["M"]}x{r["N"]}x{r["K"]}'
        if r.get("exact") is False:
            exact = False
        if r.get("tops") is None:
            continue
        variants.setdefault(r["variant"], {})[shape] = r["tops"]
        if r["variant"] == default:
            tops[shape] = r["tops"]
    return {
        "kernel": default,
        "robustness": not any("disable_robustness" in f for f in g.get("dawnFlags", [])),
        "exact": exact,
        "tops": tops,
        "targets": TARGETS,
        "met": {s: tops.get(s, 0) >= t for s, t in TARGETS.items()},
        "variants": variants,
    }


def split_speed(doc):
    return [
        {
            "shape": r["shape"],
            "speedup": (r.get("precision") or {}).get("graph", {}).get("speedup"),
            "tflops": (r.get("precision") or {}).get("graph", {}).get("tflops"),
        }
        for r in doc.get("speed", [])
    ]


def main():
    d, call = sys.argv[1], sys.argv[2]
    g = gemm(load(d, "int8-gemm.json"))
    pre = load(d, "prefill.json")["results"][0]
    ppl = load(d, "ppl.json")
    sp = load(d, "split.json")
    ours, torch = sp["ours"], sp["torch"]
    dec, w8 = ppl["decoder"]["ppl"], ppl["w8a8"]["ppl"]
    change = (w8 - dec) / dec
    speedup = pre["speedup"]
    acc = ours["accuracy"][0]
    ratio = acc["split"]["relRms"] / torch["accuracy"]["bf16Autocast"]["relRms"]
    speeds = split_speed(ours)
    min_speed = min(s["speedup"] for s in speeds if s["speedup"] is not None)
    out = {
        "issue": 25,
        "device": "NVIDIA H200 (driver 580, Dawn from webgpu 0.6.2), Dawn's robustness on",
        "call": call,
        "gemm": g,
        "w8a8_prefill": {
            "model": "Llama-2-7B-shaped 3-bit (random LUTs/indices)",
            "prompt": pre["promptLength"],
            "tokens_per_s": {k: v["tokensPerSecond"] for k, v in pre["modes"].items()},
            "speedup": speedup,
            "target": 2,
            "met": speedup >= 2,
        },
        "w8a8_ppl": {
            "model": "edkm-tiny 3-bit (post-training k-means), last 20,000 characters",
            "decoder": dec,
            "w8a8": w8,
            "change": change,
            "target": 0.01,
            "met": abs(change) <= 0.01,
        },
        "split": {
            "accuracy": {
                "shape": acc["shape"],
                "split_rel_rms": acc["split"]["relRms"],
                "torch_bf16_autocast_rel_rms": torch["accuracy"]["bf16Autocast"]["relRms"],
                "ratio": ratio,
                "met": ratio <= 1,
            },
            "speed": speeds,
            "speed_target": ">= 2x our f32 GEMM",
            "speed_met": min_speed >= 2,
            "layer7b_fwd_bwd_graph_ms": {
                "f32": sp["layer7b_f32"].get("graphMs"),
                "split": sp["layer7b_split"].get("graphMs"),
            },
            "moonshot_200": ours["verdict"].get("maxSplitTflops", 0) >= 200,
        },
    }
    variants = {}
    for path in sys.argv[3:]:
        with open(path) as f:
            variants[os.path.basename(path)] = split_speed(json.load(f))
    if variants:
        out["split"]["variants"] = variants
    out["met"] = {
        "int8_gemm_500_at_8192": g["exact"] and g["met"]["8192x8192x8192"],
        "int8_gemm_300_at_2048x4096x11008": g["exact"] and g["met"]["2048x4096x11008"],
        "w8a8_prefill_2x": out["w8a8_prefill"]["met"],
        "w8a8_ppl_1pct": out["w8a8_ppl"]["met"],
        "split_error_le_bf16": out["split"]["accuracy"]["met"],
        "split_speed_2x": out["split"]["speed_met"],
    }
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
