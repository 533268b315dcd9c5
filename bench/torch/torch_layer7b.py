"""One LLaMA-7B-shaped decoder layer in PyTorch float32, forward + backward over 2048 tokens.

The twin of bench/layer7b.ts: random weights (N(0, 0.02²)), RMSNorm weights 1, gradients of every
weight and of the input, upstream gradient dy (the loss Σ y·dy). Prints one JSON object.

Usage: python3 torch_layer7b.py [--tokens 2048] [--batch 1] [--iters 10] [--attn sdpa|eager]
                                 [--device cuda|cpu] [--hidden 4096 --heads 32 --intermediate 11008]
TF32 stays off (true float32 matmuls), as in the project's f32 comparison.
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--tokens", type=int, default=2048)
p.add_argument("--batch", type=int, default=1)
p.add_argument("--iters", type=int, default=10)
p.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
p.add_argument("--hidden", type=int, default=4096)
p.add_argument("--heads", type=int, default=32)
p.add_argument("--kv-heads", type=int, default=None)
p.add_argument("--intermediate", type=int, default=11008)
a = p.parse_args()

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = torch.device(a.device)
B, T, Hd = a.batch, a.tokens // a.batch, a.hidden
H = a.heads
KV = a.kv_heads or H
D = Hd // H
I = a.intermediate
g = torch.Generator(device="cpu").manual_seed(0)


def param(*shape, std=0.02):
    return (torch.randn(*shape, generator=g) * std).to(dev).requires_grad_(True)


W = {
    "q": param(Hd, Hd),
    "k": param(KV * D, Hd),
    "v": param(KV * D, Hd),
    "o": param(Hd, Hd),
    "gate": param(I, Hd),
    "up": param(I, Hd),
    "down": param(Hd, I),
}
n1 = torch.ones(Hd, device=dev, requires_grad=True)
n2 = torch.ones(Hd, device=dev, requires_grad=True)
x = torch.randn(B, T, Hd, generator=g).to(dev).requires_grad_(True)
dy = torch.randn(B, T, Hd, generator=g).to(dev)
inv = 1.0 / (10000 ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv)
emb = torch.cat([freqs, freqs], -1).to(dev)
cos, sin = emb.cos()[None, None], emb.sin()[None, None]


def rms(t, w, eps=1e-5):
    return t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + eps) * w


def rot(t):
    t1, t2 = t[..., : D // 2], t[..., D // 2 :]
    return torch.cat([-t2, t1], -1)


def layer(x):
    h = rms(x, n1)
    q = (h @ W["q"].T).view(B, T, H, D).transpose(1, 2)
    k = (h @ W["k"].T).view(B, T, KV, D).transpose(1, 2)
    v = (h @ W["v"].T).view(B, T, KV, D).transpose(1, 2)
    q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
    if KV != H:
        k = k.repeat_interleave(H // KV, 1)
        v = v.repeat_interleave(H // KV, 1)
    if a.attn == "sdpa":
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    else:
        s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        s = s.masked_fill(torch.ones(T, T, device=dev, dtype=torch.bool).triu(1), float("-inf"))
        o = s.softmax(-1) @ v
    x = x + o.transpose(1, 2).reshape(B, T, Hd) @ W["o"].T
    m = rms(x, n2)
    return x + (F.silu(m @ W["gate"].T) * (m @ W["up"].T)) @ W["down"].T


params = [*W.values(), n1, n2, x]


def step():
    for t in params:
        t.grad = None
    y = layer(x)
    y.backward(dy)


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


step()
sync()
times = []
for _ in range(a.iters):
    t0 = time.perf_counter()
    step()
    sync()
    times.append((time.perf_counter() - t0) * 1000)
times.sort()
ms = times[len(times) // 2]
flops = 3 * 2 * B * T * sum(w.numel() for w in W.values()) + 3 * 2 * 2 * B * H * T * T * D
print(
    json.dumps(
        {
            "bench": "torch_layer7b",
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
            "attn": a.attn,
            "shape": {"batch": B, "tokensPerSequence": T, "hidden": Hd, "heads": H, "kvHeads": KV, "intermediate": I},
            "fwdBwdMs": ms,
            "times": times,
            "tflops": flops / (ms / 1000) / 1e12,
            "peakGiB": torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None,
        },
        indent=2,
    )
)
