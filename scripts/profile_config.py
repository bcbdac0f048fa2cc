"""Runs one forced configuration of the INT8 GEMM four times on random operands (a compact
activation), for a profiler to catch one launch:

    ncu --clock-control none --set full -k regex:device_kernel --launch-skip 2 --launch-count 1 \
        python3 scripts/profile_config.py M N K CONFIG

CONFIG indexes qbench_ext.gemm.int8_scaled_mm_configs()."""
import sys

import torch

from qbench_ext import gemm

m, n, k, cid = (int(x) for x in sys.argv[1:5])
g = torch.Generator(device="cuda").manual_seed(0)
a = torch.randint(-128, 128, (m, k), dtype=torch.int8, device="cuda", generator=g)
b = torch.randint(-128, 128, (n, k), dtype=torch.int8, device="cuda", generator=g).t()
sa = torch.rand((m, 1), device="cuda", generator=g) + 0.5
sb = torch.rand((n,), device="cuda", generator=g) + 0.5
for _ in range(4):
    gemm._int8_scaled_mm_config(a, b, sa, sb, cid)
torch.cuda.synchronize()
print(m, n, k, gemm.int8_scaled_mm_configs()[cid], "ok")
