"""Loads an `edkm export --format hf` folder with transformers and compares its last-position
logits with ours (bench/hf-logits.ts JSON files: on the same HF folder, and on the palettized
export of the same run). Prints one JSON object; exits 1 when a difference exceeds --tol.

Usage: python3 check_hf_export.py HF_DIR OURS.json [MORE.json ...] [--tol 1e-2] [--device cuda]
"""
import argparse
import json
import sys

import torch
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hf_dir")
    ap.add_argument("ours", nargs="+")
    ap.add_argument("--tol", type=float, default=1e-2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = AutoModelForCausalLM.from_pretrained(a.hf_dir, dtype=torch.float32).to(a.device).eval()
    meta = {}
    try:
        from safetensors import safe_open
        import os
        idx = os.path.join(a.hf_dir, "model.safetensors.index.json")
        first = json.load(open(idx))["weight_map"] if os.path.exists(idx) else None
        shard = sorted(set(first.values()))[0] if first else "model.safetensors"
        with safe_open(os.path.join(a.hf_dir, shard), "pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # the metadata is informative only
        meta = {"error": str(e)}
    palettes = json.loads(meta.get("edkm_palettes", "{}")) if "edkm_palettes" in meta else {}
    results = []
    ok = True
    for path in a.ours:
        ours = json.load(open(path))
        worst = 0.0
        for p in ours["prompts"]:
            ids = torch.tensor([p["input_ids"]], device=a.device)
            with torch.no_grad():
                logits = model(ids).logits[0, -1].float().cpu()
            diff = (logits - torch.tensor(p["last_logits"])).abs().max().item()
            worst = max(worst, diff)
        results.append({"ours": path, "ours_model": ours.get("model"), "max_abs_diff": worst, "ok": worst <= a.tol})
        ok = ok and worst <= a.tol
    print(json.dumps({
        "check": "hf-export",
        "hf_dir": a.hf_dir,
        "transformers_dtype": "float32",
        "device": a.device,
        "palettized_weights_in_metadata": len(palettes),
        "tol": a.tol,
        "results": results,
        "ok": ok,
    }, indent=2))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
