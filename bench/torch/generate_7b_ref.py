"""Reference for bench/generate.ts: PyTorch fp16 greedy decoding of a Llama-2-7B-shaped model with
random weights (transformers' LlamaForCausalLM, KV cache), batch 1. The fp16 weights are 13.5 GB,
so each decode step reads at least that: the memory-bandwidth bound of any fp16 runtime.
Prints one JSON line: prefill and decode tokens/s, weight bytes, achieved GB/s.
Usage: python3 generate_7b_ref.py [PROMPT=32] [NEW=128] [--static]  (--static: static KV cache)"""
import json, sys, time, torch
from transformers import LlamaConfig, LlamaForCausalLM

args = [a for a in sys.argv[1:] if not a.startswith("--")]
prompt_len = int(args[0]) if args else 32
new = int(args[1]) if len(args) > 1 else 128
static = "--static" in sys.argv
cfg = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=32, vocab_size=32000,
                  max_position_embeddings=4096, rms_norm_eps=1e-5)
torch.manual_seed(0)
torch.set_default_dtype(torch.float16)
with torch.device("cuda"):
    m = LlamaForCausalLM(cfg)
m.eval()
weight_bytes = sum(p.numel() * p.element_size() for p in m.parameters())
ids = torch.randint(3, 32000, (1, prompt_len), device="cuda")
kw = dict(do_sample=False, pad_token_id=0)
if static: kw["cache_implementation"] = "static"

def run(n):
    torch.cuda.synchronize(); t0 = time.perf_counter()
    with torch.no_grad(): m.generate(ids, max_new_tokens=n, min_new_tokens=n, **kw)
    torch.cuda.synchronize(); return time.perf_counter() - t0

run(8)  # warm-up
t1 = min(run(1) for _ in range(3))
tn = min(run(new + 1) for _ in range(2))
decode_tps = new / (tn - t1)
# one decode step reads every weight but the embedding table (one row of it)
step_bytes = weight_bytes - cfg.vocab_size * cfg.hidden_size * 2
print(json.dumps(dict(
    bench="torch fp16 generate, Llama-2-7B shape, random weights", torch=torch.__version__,
    gpu=torch.cuda.get_device_name(), static_cache=static, prompt=prompt_len, new_tokens=new,
    prefill_tokens_per_s=round(prompt_len / t1, 1), decode_tokens_per_s=round(decode_tps, 1),
    weight_bytes=weight_bytes, achieved_GBps=round(step_bytes * decode_tps / 1e9, 1),
    peak_memory_bytes=torch.cuda.max_memory_allocated())))
