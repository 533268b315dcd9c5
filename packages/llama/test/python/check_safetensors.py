"""Reads a safetensors file written by @edkm/llama with Python's safetensors + torch and prints
each tensor's dtype, shape and sum as JSON, plus the metadata. Usage:
    python check_safetensors.py FILE.safetensors
(run on 2026-11-23 with safetensors 0.8.0 / torch 2.11 on files from writeSafetensors and from the
app's palettized export: every dtype, shape, value and the metadata read back as written)."""
import json
import sys

from safetensors import safe_open
from safetensors.torch import load_file

path = sys.argv[1]
tensors = load_file(path)
with safe_open(path, "pt") as f:
    metadata = f.metadata()
print(json.dumps({
    "tensors": {k: {"dtype": str(v.dtype), "shape": list(v.shape), "sum": float(v.double().sum())} for k, v in sorted(tensors.items())},
    "metadata": metadata,
}, indent=2))
