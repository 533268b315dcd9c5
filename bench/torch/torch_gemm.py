"""Anchor for bench/gemm.ts: PyTorch f32 (TF32 off) matrix products on the GPU at the same shapes
and transposed forms (C[M,N] = op(A) op(B), shapes MxKxN). Prints one JSON object."""
import json, sys, time, torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
shapes = ["4096x4096x4096", "2048x4096x4096", "2048x4096x11008", "2048x11008x4096",
          "4096x2048x4096", "11008x2048x4096", "4096x2048x11008",
          "2048x288x288", "2048x288x768", "2048x768x288", "288x2048x768"]
rows = []
for shape in shapes:
    m, k, n = map(int, shape.split("x"))
    row = {"shape": shape}
    for form in ("NN", "NT", "TN", "TT"):
        a = torch.rand(k if form[0] == "T" else m, m if form[0] == "T" else k, device="cuda") * 2 - 1
        b = torch.rand(n if form[1] == "T" else k, k if form[1] == "T" else n, device="cuda") * 2 - 1
        f = lambda: (a.t() if form[0] == "T" else a) @ (b.t() if form[1] == "T" else b)
        for _ in range(3): f()
        torch.cuda.synchronize(); t0 = time.perf_counter()
        reps = 10
        for _ in range(reps): f()
        torch.cuda.synchronize(); ms = (time.perf_counter() - t0) / reps * 1e3
        row[form] = dict(ms=round(ms, 3), tflops=round(2 * m * k * n / ms / 1e9, 2))
        del a, b
    rows.append(row)
print(json.dumps({"bench": "torch_gemm", "torch": torch.__version__,
                  "device": torch.cuda.get_device_name(), "tf32": False, "rows": rows}, indent=1))
