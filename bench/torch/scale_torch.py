"""PyTorch side of bench/scale.ts: the same fine-tuning step on the same made model folder
(`edkm make-model --preset tinyllama-1.1b`), eDKM-style uniquified DKM on every decoder linear
(the method of ../../../shared/anchors/torch_dkm_layer.py and torch_dkm_finetune_tiny.py:
soft k-means on the distinct bf16 values, 3 iterations, tau = 0.05 var(W), gathered back by
index, straight-through to the float32 master weights), AdamW over every weight but the
embeddings, clip 1.0, batch x seq random tokens. Two precisions: float32 (TF32 off) and bf16
autocast. Reports tokens/s (median step after warm-up) and peak memory (max_memory_allocated).

Usage: python3 scale_torch.py MODEL_DIR [--steps 10] [--batch 1] [--seq 512] [--bits 3]
       [--modes f32,bf16] [--checkpointing]
"""
import argparse
import json
import time

import torch
from torch.func import functional_call
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--bits", type=int, default=3)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--modes", default="f32,bf16")
    ap.add_argument("--checkpointing", action="store_true", help="HF gradient checkpointing per layer")
    a = ap.parse_args()
    dev = "cuda"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    K = 2 ** a.bits
    out = {"bench": "scale-torch", "device": torch.cuda.get_device_name(), "torch": torch.__version__,
           "model": a.model_dir, "batch": a.batch, "seq": a.seq, "bits": a.bits, "iters": a.iters,
           "checkpointing": a.checkpointing, "modes": {}}

    def dkm(w, c, tau):
        u, inv = torch.unique(w.detach().to(torch.bfloat16).float().flatten(), return_inverse=True)
        cnt = torch.bincount(inv, minlength=u.numel()).float()[:, None]
        x = torch.zeros(u.numel(), device=w.device).index_add(0, inv, w.flatten().float()) / cnt[:, 0]
        x = x[:, None]
        for _ in range(a.iters):
            att = torch.softmax(-(x - c) ** 2 / tau, 1)
            c = (att * x * cnt).sum(0) / (att * cnt).sum(0)
        return (att @ c).index_select(0, inv).reshape(w.shape), c.detach()

    for mode in a.modes.split(","):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        model = AutoModelForCausalLM.from_pretrained(a.model_dir, dtype=torch.float32).to(dev).train()
        if a.checkpointing:
            model.gradient_checkpointing_enable()
        model.get_input_embeddings().weight.requires_grad_(False)
        names = [n for n, p in model.named_parameters() if n.startswith("model.layers.") and n.endswith("_proj.weight")]
        params = dict(model.named_parameters())
        cents = {}
        taus = {}
        for n in names:
            w = params[n].detach()
            q = torch.linspace(0.5 / K, 1 - 0.5 / K, K, device=dev)
            s = w.flatten()[:: max(1, w.numel() // 1_000_000)].float()
            cents[n] = torch.quantile(s, q)
            taus[n] = 0.05 * w.var().item()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, weight_decay=0.0)
        g = torch.Generator(device=dev).manual_seed(0)
        vocab = model.config.vocab_size
        times = []
        loss_value = None
        try:
            for step in range(a.steps + 1):
                x = torch.randint(3, min(vocab, 4096), (a.batch, a.seq), device=dev, generator=g)
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=(mode == "bf16")):
                    params = dict(model.named_parameters())
                    over = {}
                    for n in names:
                        over[n], cents[n] = dkm(params[n], cents[n], taus[n])
                    o = functional_call(model, {**params, **over}, (x,), {"labels": x})
                o.loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                opt.zero_grad(set_to_none=True)
                torch.cuda.synchronize()
                if step > 0:
                    times.append(time.perf_counter() - t0)
                loss_value = o.loss.item()
                del o, over
            times.sort()
            med = times[len(times) // 2]
            out["modes"][mode] = {
                "step_seconds_median": med,
                "tokens_per_second": a.batch * a.seq / med,
                "peak_bytes": torch.cuda.max_memory_allocated(),
                "peak_GiB": torch.cuda.max_memory_allocated() / 2 ** 30,
                "peak_reserved_GiB": torch.cuda.max_memory_reserved() / 2 ** 30,
                "final_loss": loss_value,
                "palettized_linears": len(names),
            }
        except torch.OutOfMemoryError as e:
            out["modes"][mode] = {"oom": True, "error": str(e)[:300]}
        del model, opt
        print(json.dumps({mode: out["modes"][mode]}), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
