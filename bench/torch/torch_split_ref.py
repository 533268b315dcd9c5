"""Anchor for bench/split.ts (issue #25): PyTorch's bf16-autocast error on exactly the matrices
that `split.ts --dump DIR` wrote, and PyTorch's bf16 and f32 (TF32 off) matrix-product speed at
the bench's shapes. Prints one JSON object.

Usage: python3 torch_split_ref.py [--dump DIR] [--shapes MxNxK,...] [--reps 20] [--device cuda|cpu]
  --dump DIR: DIR/header.json (m, n, k, rows, ...), DIR/a.f32 (A [m,k]) and DIR/b.f32 (B [n,k]),
    raw little-endian float32, row-major. C = A @ B.T; the errors are over header["rows"] × all
    columns against a float64 reference, as split.ts defines them: relative RMS ‖C − ref‖ / ‖ref‖
    and max |C − ref|. Without --dump (or with a missing DIR) only the speed part runs.
  --shapes: MxNxK (C[M,N] = A[M,K] @ B[N,K].T), split.ts's speed shapes by default; timed on CUDA
    only (CUDA events, warm-up then the median over 5 rounds of --reps). `bf16`: bf16 operands made
    beforehand; `autocast`: f32 operands under torch.autocast(bf16), the casts included, as a
    training step pays them; `f32`: TF32 off; `tf32`: TF32 on, for reference.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

SPEED_SHAPES = "2048x4096x4096,2048x11008x4096,2048x4096x11008,4096x4096x4096"

p = argparse.ArgumentParser()
p.add_argument("--dump", default=None)
p.add_argument("--shapes", default=SPEED_SHAPES)
p.add_argument("--reps", type=int, default=20)
p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
args = p.parse_args()
dev = torch.device(args.device)
cuda = dev.type == "cuda"
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

out = {
    "bench": "torch_split_ref",
    "torch": torch.__version__,
    "device": torch.cuda.get_device_name(dev) if cuda else "cpu",
}
try:  # cuBLAS may sum bf16 products in reduced precision (PyTorch's default: allowed)
    out["bf16ReducedPrecisionReduction"] = bool(
        torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction
    )
except (AttributeError, AssertionError):  # older torch
    pass


def errors(got, ref):
    e = got.double() - ref
    return {
        "relRms": float(f"{(e.norm() / ref.norm()).item():.4g}"),
        "maxAbs": float(f"{e.abs().max().item():.4g}"),
    }


if args.dump and os.path.exists(os.path.join(args.dump, "header.json")):
    with open(os.path.join(args.dump, "header.json")) as f:
        h = json.load(f)
    m, n, k = h["m"], h["n"], h["k"]
    read = lambda name, r, c: torch.from_numpy(
        np.fromfile(os.path.join(args.dump, h[name]), dtype="<f4").reshape(r, c).copy()
    ).to(dev)
    a, b = read("a", m, k), read("b", n, k)
    rows = torch.tensor(h["rows"], dtype=torch.long, device=dev)
    ref = a[rows].double() @ b.double().T
    with torch.autocast(dev.type, dtype=torch.bfloat16):
        c_auto = a @ b.T  # the whole product, as training computes it; then the sampled rows
    acc = {
        "shape": f"{m}x{n}x{k}",
        "rows": len(h["rows"]),
        "refRms": float(f"{ref.pow(2).mean().sqrt().item():.4g}"),
        "autocastDtype": str(c_auto.dtype),
        "bf16Autocast": errors(c_auto[rows], ref),
        # bf16 operands and a bf16 output, explicitly (what autocast should do)
        "bf16": errors((a.bfloat16() @ b.bfloat16().T)[rows], ref),
        "f32": errors((a @ b.T)[rows], ref),
    }
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        acc["tf32"] = errors((a @ b.T)[rows], ref)
        torch.backends.cuda.matmul.allow_tf32 = False
    # split.ts's errors on the same matrices, side by side
    ours = h.get("ours", {})
    acc["ours"] = ours
    if "split" in ours:
        acc["splitRelRmsOverBf16Autocast"] = float(
            f"{ours['split']['relRms'] / acc['bf16Autocast']['relRms']:.4g}"
        )
    out["accuracy"] = acc
    del a, b, ref, c_auto
elif args.dump:
    out["accuracy"] = {"error": f"no {os.path.join(args.dump, 'header.json')}"}


def time_ms(f):
    """Median over 5 rounds of --reps runs (CUDA events), after a warm-up."""
    for _ in range(3):
        f()
    torch.cuda.synchronize()
    times = []
    for _ in range(5):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(args.reps):
            f()
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e) / args.reps)
    return sorted(times)[2]


if cuda and args.shapes:
    speed = []
    for shape in args.shapes.split(","):
        m, n, k = map(int, shape.split("x"))
        tf = lambda ms: round(2 * m * n * k / ms / 1e9, 2)
        a = torch.randn(m, k, device=dev)
        b = torch.randn(n, k, device=dev) * 0.02
        ab, bb = a.bfloat16(), b.bfloat16()

        def autocast():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return a @ b.T

        def tf32():
            torch.backends.cuda.matmul.allow_tf32 = True
            c = a @ b.T
            torch.backends.cuda.matmul.allow_tf32 = False
            return c

        row = {"shape": shape, "m": m, "n": n, "k": k}
        for name, f in (
            ("bf16", lambda: ab @ bb.T),
            ("autocast", autocast),
            ("f32", lambda: a @ b.T),
            ("tf32", tf32),
        ):
            ms = time_ms(f)
            row[name] = {"ms": round(ms, 3), "tflops": tf(ms)}
        speed.append(row)
        print(json.dumps(row), file=sys.stderr)
        del a, b, ab, bb
        torch.cuda.empty_cache()
    out["speed"] = speed
elif args.shapes:
    out["speed"] = {"skipped": "no CUDA device"}

print(json.dumps(out, indent=1))
