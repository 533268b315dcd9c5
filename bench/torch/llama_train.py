"""PyTorch reference for bench/llama.ts on the CPU: edkm-tiny training tokens/s (forward, backward
and AdamW) and greedy decoding tokens/s, float32. A small pure-torch LLaMA (no transformers): the
model's config.json and model.safetensors (read by hand: an 8-byte header length, a JSON header,
raw little-endian tensors). The token ids are bench/llama.ts's, so the first loss matches ours.
Usage: python3 llama_train.py MODEL_DIR [--batch 8] [--seq 256] [--steps 3] [--new 64] [--threads 2]
Prints one JSON object."""
import argparse, json, math, os, struct, time
import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--batch", type=int, default=8)
ap.add_argument("--seq", type=int, default=256)
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--new", type=int, default=64)
ap.add_argument("--threads", type=int, default=0)
args = ap.parse_args()
if args.threads: torch.set_num_threads(args.threads)

cfg = json.load(open(os.path.join(args.model, "config.json")))
DT = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}

def load_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__": continue
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=DT[info["dtype"]])
        out[name] = t.reshape(info["shape"]).float()
    return out

W = load_safetensors(os.path.join(args.model, "model.safetensors"))
H, NH, NKV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
HD = cfg.get("head_dim") or H // NH
EPS = cfg["rms_norm_eps"]
THETA = (cfg.get("rope_parameters") or {}).get("rope_theta", cfg.get("rope_theta", 10000.0))
L = cfg["num_hidden_layers"]
params = {k: torch.nn.Parameter(v) for k, v in W.items()}

def rms(x, w): return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w

def rope(T):
    inv = 1.0 / (THETA ** (torch.arange(0, HD, 2).float() / HD))
    f = torch.outer(torch.arange(T).float(), inv)
    e = torch.cat([f, f], -1)
    return e.cos(), e.sin()

def rot(x, cos, sin):
    x1, x2 = x[..., : HD // 2], x[..., HD // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin

def forward(ids, cache=None, start=0):
    B, T = ids.shape
    p = params
    x = p["model.embed_tokens.weight"][ids]
    cos, sin = rope(start + T)
    cos, sin = cos[start:], sin[start:]
    Tk = start + T
    mask = torch.full((T, Tk), float("-inf")).triu(start + 1)
    for i in range(L):
        pre = f"model.layers.{i}."
        h = rms(x, p[pre + "input_layernorm.weight"])
        q = (h @ p[pre + "self_attn.q_proj.weight"].T).view(B, T, NH, HD).transpose(1, 2)
        k = (h @ p[pre + "self_attn.k_proj.weight"].T).view(B, T, NKV, HD).transpose(1, 2)
        v = (h @ p[pre + "self_attn.v_proj.weight"].T).view(B, T, NKV, HD).transpose(1, 2)
        q, k = rot(q, cos, sin), rot(k, cos, sin)
        if cache is not None:
            if i in cache:
                k = torch.cat([cache[i][0], k], 2); v = torch.cat([cache[i][1], v], 2)
            cache[i] = (k, v)
        k = k.repeat_interleave(NH // NKV, 1); v = v.repeat_interleave(NH // NKV, 1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(HD) + mask
        o = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, NH * HD)
        x = x + o @ p[pre + "self_attn.o_proj.weight"].T
        h = rms(x, p[pre + "post_attention_layernorm.weight"])
        g = F.silu(h @ p[pre + "mlp.gate_proj.weight"].T) * (h @ p[pre + "mlp.up_proj.weight"].T)
        x = x + g @ p[pre + "mlp.down_proj.weight"].T
    x = rms(x, p["model.norm.weight"])
    return x @ p["lm_head.weight"].T

B, T = args.batch, args.seq
ids = torch.tensor([[3 + ((b * 131 + t * 17) % 4000) for t in range(T)] for b in range(B)])
opt = torch.optim.AdamW(params.values(), lr=1e-4, weight_decay=0.01)
first_loss = None
times = []
for s in range(args.steps + 1):
    t0 = time.perf_counter()
    logits = forward(ids)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
    loss.backward(); opt.step(); opt.zero_grad()
    if first_loss is None: first_loss = loss.item()
    if s > 0: times.append(time.perf_counter() - t0)
times.sort()
step = times[len(times) // 2]

with torch.no_grad():
    def generate(prompt, n):
        cache = {}
        logits = forward(prompt, cache, 0)
        pos, out = prompt.shape[1], []
        for _ in range(n):
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            out.append(nxt.item())
            logits = forward(nxt, cache, pos); pos += 1
        return out
    prompt = torch.tensor([[1, 3410, 624, 261, 684]])
    generate(prompt, 4)
    t0 = time.perf_counter(); generate(prompt, args.new); gen = time.perf_counter() - t0

print(json.dumps({
    "bench": "llama-torch", "torch": torch.__version__, "threads": torch.get_num_threads(),
    "model": os.path.basename(os.path.normpath(args.model)),
    "training": {"batch": B, "seq": T, "optimizer": "AdamW", "firstLoss": first_loss,
                 "stepMs": step * 1000, "tokensPerSecond": B * T / step},
    "generation": {"newTokens": args.new, "tokensPerSecond": args.new / gen},
}, indent=2))
