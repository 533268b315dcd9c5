"""Anchor for bench/bandwidth.ts: PyTorch's device-memory bandwidth on the same GPU, 1 GiB buffers:
copy (a.copy_(b), read + write counted) and read (b.sum() over int32 viewed as float32: reads
only). Prints one JSON object of GB/s (10^9 bytes a second), the median of 3 timings of 10."""
import json, time, torch

n = 2**30
a = torch.empty(n // 4, dtype=torch.float32, device="cuda")
b = torch.rand(n // 4, dtype=torch.float32, device="cuda")


def gbps(f, moved):
    f(); torch.cuda.synchronize()
    ts = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(10): f()
        torch.cuda.synchronize(); ts.append((time.perf_counter() - t0) / 10)
    return round(moved / sorted(ts)[1] / 1e9, 1)


print(json.dumps({"bench": "torch_bandwidth", "device": torch.cuda.get_device_name(),
                  "gbps": {"copy": gbps(lambda: a.copy_(b), 2 * n), "read-sum": gbps(lambda: b.sum(), n)}}))
