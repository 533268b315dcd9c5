"""Issue 21's record from one `bash bench/h200-round.sh tiny gemm layer7b recipe` call: reads that
call's $OUT/all.log (each step's output under a "=== name: command" header) and prints
speed.json's object: {"torch": {tiny_train_tok_s, recipe_s, gemm_f32_tflops},
"ours": {tiny_train_tok_s, recipe_s, gemm_f32_tflops (per shape and form), layer7b_fwd_bwd_ms},
"torch_layer7b_fwd_bwd_ms", "ratios", "criteria"}.
Usage: python3 bench/speed-json.py ALL_LOG [--recipe-log OUT/dkm3.log] [--device TEXT] > speed.json"""
import json, re, sys


def sections(text):
    out, name, lines = {}, None, []
    for line in text.splitlines():
        m = re.match(r"^=== ([\w-]+): ", line)
        if m:
            if name:
                out[name] = "\n".join(lines)
            name, lines = m.group(1), []
        else:
            lines.append(line)
    if name:
        out[name] = "\n".join(lines)
    return out


def last_json(text):
    """The last JSON document of a step's output that starts a line (Dawn prints warnings first)."""
    dec = json.JSONDecoder()
    starts = [i for i in range(len(text)) if text[i] == "{" and (i == 0 or text[i - 1] == "\n")]
    for i in reversed(starts):
        try:
            return dec.raw_decode(text[i:])[0]
        except ValueError:
            continue
    return None


def main():
    log = open(sys.argv[1]).read()
    device = sys.argv[sys.argv.index("--device") + 1] if "--device" in sys.argv else "NVIDIA H200"
    s = sections(log)
    torch_tiny = last_json(s.get("torch-tiny", "")) or {}
    ours_tiny = last_json(s.get("ours-tiny", "")) or {}
    torch_gemm = last_json(s.get("torch-gemm", "")) or {}
    ours_gemm = last_json(s.get("ours-gemm", "")) or {}
    torch_layer = last_json(s.get("torch-layer7b", "")) or {}
    ours_layer = last_json(s.get("ours-layer7b", "")) or {}
    recipe = re.search(r"rc=(\d+) (\d+)s bpw=([\d.]+) ppl=([\d.]+)", s.get("ours-recipe3", ""))
    # the recipe's training seconds: the finetune's JSON line in the lane's log (--recipe-log), else
    # the lane's whole time (training, export and eval)
    recipe_log = sys.argv[sys.argv.index("--recipe-log") + 1] if "--recipe-log" in sys.argv else None
    train_s = re.findall(r'"steps":400,"tokens":\d+,"seconds":([\d.]+)', open(recipe_log).read()) if recipe_log else []
    torch_recipe = s.get("torch-recipe3", "")
    torch_steps = re.findall(r'"step": 400, "loss": [\d.]+, "s": ([\d.]+)', torch_recipe)
    torch_ppl = re.findall(r'"dkm_hard": ([\d.]+)', torch_recipe)

    shapes = ["4096x4096x4096", "2048x4096x4096", "2048x4096x11008", "2048x11008x4096"]
    gemm = {}
    for row in ours_gemm.get("rows", []):
        if row["shape"] in shapes:
            gemm.setdefault(row["shape"], {})[row["form"]] = row["ours"]["tflops"]
    gemm_min = min((v for f in gemm.values() for v in f.values()), default=None)
    torch_gemm_f32 = torch_gemm.get("f32_4096", {}).get("tflops")
    ours_tok = ours_tiny.get("training", {}).get("tokensPerSecond")
    torch_tok = torch_tiny.get("train_tokens_per_s")
    layer_ms = ours_layer.get("fwdBwdMs")
    layer_graph_ms = ours_layer.get("graphMs")
    torch_layer_ms = torch_layer.get("fwdBwdMs")
    ours_recipe_s = round(float(train_s[-1]), 2) if train_s else (int(recipe.group(2)) if recipe else None)
    torch_recipe_s = float(torch_steps[-1]) if torch_steps else None
    best_layer = min(x for x in (layer_ms, layer_graph_ms) if x is not None) if layer_ms else None
    out = {
        "device": f"{device}, one device call (bench/h200-round.sh tiny gemm layer7b recipe)",
        "torch": {"tiny_train_tok_s": torch_tok, "recipe_s": torch_recipe_s,
                  "recipe_ppl": float(torch_ppl[-1]) if torch_ppl else None,
                  "gemm_f32_tflops": torch_gemm_f32},
        "ours": {"tiny_train_tok_s": round(ours_tok) if ours_tok else None, "recipe_s": ours_recipe_s,
                 "recipe_ppl": float(recipe.group(4)) if recipe else None,
                 "gemm_f32_tflops": gemm, "layer7b_fwd_bwd_ms": best_layer,
                 "layer7b_fwd_bwd_ms_op_by_op": layer_ms, "layer7b_fwd_bwd_ms_recorded": layer_graph_ms},
        "torch_layer7b_fwd_bwd_ms": torch_layer_ms,
    }
    ratio = lambda a, b: round(a / b, 3) if a and b else None
    out["ratios"] = {"tiny_train": ratio(ours_tok, torch_tok),
                     "recipe_time_ours_over_torch": ratio(ours_recipe_s, torch_recipe_s),
                     "layer7b_ours_over_torch": ratio(best_layer, torch_layer_ms)}
    out["criteria"] = {
        "tiny_train_at_least_torch": bool(ours_tok and torch_tok and ours_tok >= torch_tok),
        "recipe_at_most_60s": bool(ours_recipe_s is not None and ours_recipe_s <= 60),
        "gemm_at_least_40_everywhere": bool(gemm_min is not None and gemm_min >= 40 and len(gemm) == 4),
        "gemm_min_tflops": gemm_min,
        "layer7b_within_1_5x": bool(best_layer and torch_layer_ms and best_layer <= 1.5 * torch_layer_ms),
    }
    print(json.dumps(out, indent=1))


main()
