"""CPU reference for bench/generate.ts where transformers is not installed (Debian's python3-torch):
a pure-PyTorch LLaMA greedy decode loop with a KV cache over the same model.safetensors (weights
read by hand, bf16 -> float32), batch 1. Checks its tokens against the model's reference.json
(transformers' greedy ids) and prints one JSON line with decode tokens/s.
Usage: python3 tiny_decode_cpu.py MODEL_DIR [THREADS=2] [NEW=128]"""
import json, struct, sys, time, math
import torch

mdir = sys.argv[1]
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
new = int(sys.argv[3]) if len(sys.argv) > 3 else 128
cfg = json.load(open(f"{mdir}/config.json"))
raw = open(f"{mdir}/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
W = {}
for name, e in header.items():
    if name == "__metadata__": continue
    b, t = e["data_offsets"]
    dt = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}[e["dtype"]]
    W[name] = torch.frombuffer(bytearray(raw[8 + n + b:8 + n + t]), dtype=dt).reshape(e["shape"]).float()
H, L = cfg["hidden_size"], cfg["num_hidden_layers"]
NH, KV = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
D = cfg.get("head_dim", H // NH)
eps = cfg["rms_norm_eps"]
theta = (cfg.get("rope_parameters") or {}).get("rope_theta", cfg.get("rope_theta", 10000.0))
inv = 1.0 / theta ** (torch.arange(0, D, 2).float() / D)
head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
maxlen = 1024

def norm(x, w): return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w
def rot(x): return torch.cat([-x[..., D // 2:], x[..., :D // 2]], -1)

def forward(ids, pos, cache):
    T = ids.shape[0]
    x = W["model.embed_tokens.weight"][ids]
    f = torch.outer(torch.arange(pos, pos + T).float(), inv)
    cos, sin = torch.cat([f, f], -1).cos(), torch.cat([f, f], -1).sin()
    mask = torch.full((T, pos + T), float("-inf")).triu(pos + 1)
    for l in range(L):
        p = f"model.layers.{l}."
        h = norm(x, W[p + "input_layernorm.weight"])
        q = (h @ W[p + "self_attn.q_proj.weight"].T).view(T, NH, D).transpose(0, 1)
        k = (h @ W[p + "self_attn.k_proj.weight"].T).view(T, KV, D).transpose(0, 1)
        v = (h @ W[p + "self_attn.v_proj.weight"].T).view(T, KV, D).transpose(0, 1)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        cache[l][0][:, pos:pos + T] = k
        cache[l][1][:, pos:pos + T] = v
        K = cache[l][0][:, :pos + T].repeat_interleave(NH // KV, 0)
        V = cache[l][1][:, :pos + T].repeat_interleave(NH // KV, 0)
        a = torch.softmax(q @ K.transpose(1, 2) / math.sqrt(D) + mask, -1) @ V
        x = x + a.transpose(0, 1).reshape(T, NH * D) @ W[p + "self_attn.o_proj.weight"].T
        m = norm(x, W[p + "post_attention_layernorm.weight"])
        g = m @ W[p + "mlp.gate_proj.weight"].T
        x = x + (torch.nn.functional.silu(g) * (m @ W[p + "mlp.up_proj.weight"].T)) @ W[p + "mlp.down_proj.weight"].T
    return norm(x[-1:], W["model.norm.weight"]) @ head.T

def generate(prompt, steps):
    cache = [(torch.zeros(KV, maxlen, D), torch.zeros(KV, maxlen, D)) for _ in range(L)]
    out, ids, pos = [], torch.tensor(prompt), 0
    for _ in range(steps):
        logits = forward(ids, pos, cache)
        pos += ids.shape[0]
        nxt = int(logits[0].argmax())
        out.append(nxt)
        ids = torch.tensor([nxt])
    return out

ref = json.load(open(f"{mdir}/reference.json"))["prompts"][0]
with torch.no_grad():
    got = generate(ref["input_ids"], len(ref["greedy_ids"]) - len(ref["input_ids"]))
    matches = got == ref["greedy_ids"][len(ref["input_ids"]):]
    generate(ref["input_ids"], 8)
    t0 = time.perf_counter(); generate(ref["input_ids"], 1); t1 = time.perf_counter() - t0
    t0 = time.perf_counter(); generate(ref["input_ids"], new + 1); tn = time.perf_counter() - t0
print(json.dumps(dict(bench="pure-torch greedy decode (no transformers), f32, batch 1", torch=torch.__version__,
                      threads=torch.get_num_threads(), greedy_matches_reference=matches,
                      decode_tokens_per_s=round(new / (tn - t1), 1))))
