#!/usr/bin/env python
"""A/B: the GEMM after scaled_int8_quant launched with PDL at M > 1024 (temporary switch)."""
import math
import os
import sys

import torch

from gpu_check_gemm import L2_BYTES, LLAMA_NK, make, print_device, time_interleaved
import qbench_ext
from qbench_ext import gemm


def main():
    if print_device() is None:
        return 2
    print(f"{'M':>6} {'N':>6} {'K':>6} | {'noquant':>8} {'dyn off':>8} {'dyn on':>8} | {'off %':>7} {'on %':>7}")
    for n, k in LLAMA_NK:
        for m in (1024, 2048, 4096, 8192, 16384):
            copies = max(1, min(8, math.ceil(2 * L2_BYTES / (m * k + n * k))))
            _, bs, _, sb, _ = make(m, n, k, copies=copies)
            x = torch.randn(m, k, dtype=torch.bfloat16, device="cuda")
            q0, s0, _ = qbench_ext.scaled_int8_quant(x)
            out = torch.empty(m, n, dtype=torch.bfloat16, device="cuda")

            def dyn(b, flag):
                os.environ["QBENCH_PDL_AFTER_QUANT"] = flag
                q, s, _ = qbench_ext.scaled_int8_quant(x)
                return gemm.int8_scaled_mm(q, b, s, sb, torch.bfloat16, out=out)

            lines = [[lambda b=b: gemm.int8_scaled_mm(q0, b, s0, sb, torch.bfloat16, out=out) for b in bs],
                     [lambda b=b: dyn(b, "0") for b in bs],
                     [lambda b=b: dyn(b, "1") for b in bs]]
            t = time_interleaved(lines, replays=15)
            print(f"{m:6d} {n:6d} {k:6d} | {t[0]:8.1f} {t[1]:8.1f} {t[2]:8.1f} | "
                  f"{100 * (t[1] / t[0] - 1):+6.1f}% {100 * (t[2] / t[0] - 1):+6.1f}%", flush=True)
            del bs, x, q0, out
    return 0


if __name__ == "__main__":
    sys.exit(main())
