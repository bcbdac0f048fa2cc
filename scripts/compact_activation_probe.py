#!/usr/bin/env python
"""Does copying a compact activation into memory of whole tiles pay for itself?

An activation whose memory ends at row M makes the GEMM's TMA loads of its last tile reach
past the tensor, and those loads arrive late (docs/measurements/h200-2026-12-04-partial-tiles/).
Copying it into a buffer of a multiple of 256 rows first costs a kernel and 2 M K bytes; the
dispatcher does so where csrc/gemm/int8_scaled_mm_dispatch.cpp's copy_to_whole_tiles says. Per
(M, N, K), timed in turns (CUDA-graph replays, weights rotated past the L2), us per call:

- plain: the configuration the table picks, forced, on the compact activation (never copied);
- op: int8_scaled_mm on the compact activation (copied where the rule says: the `copied` column);
- copy+op: torch's copy into a fresh buffer of whole tiles, then int8_scaled_mm on it;
- whole: int8_scaled_mm on the same values already in such a buffer (the copy's lower bound);
- copy: the copy alone;
- vllm: cutlass_scaled_mm on the compact activation, when QBENCH_VLLM_LIB is set.

    python scripts/compact_activation_probe.py [--ms M ...] [--nk NxK ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from gpu_check_gemm import LLAMA_NK, load_vllm, make, parse_nks, print_device, rotation_copies, time_interleaved
from qbench_ext import gemm

MS = [17, 33, 48, 65, 100, 129, 200, 257, 288, 320, 513, 1025, 2049, 4097]


def probe(m, n, k, vllm_op):
    a, bs, sa, sb, _ = make(m, n, k, copies=rotation_copies(m, n, k), compact_a=True)
    out = torch.empty(m, n, dtype=torch.bfloat16, device="cuda")

    def padded():
        buf = torch.empty(gemm.whole_tile_rows(m), k, dtype=torch.int8, device="cuda")[:m]
        buf.copy_(a)
        return buf

    a_whole = padded()

    pick = gemm.int8_scaled_mm_pick_config(m, n, k)
    lines = {
        "plain": [lambda b=b: gemm._int8_scaled_mm_config(a, b, sa, sb, pick, torch.bfloat16, out=out) for b in bs],
        "op": [lambda b=b: gemm.int8_scaled_mm(a, b, sa, sb, torch.bfloat16, out=out) for b in bs],
        "copy+op": [lambda b=b: gemm.int8_scaled_mm(padded(), b, sa, sb, torch.bfloat16, out=out) for b in bs],
        "whole": [lambda b=b: gemm.int8_scaled_mm(a_whole, b, sa, sb, torch.bfloat16, out=out) for b in bs],
        "copy": [padded],
    }
    if vllm_op is not None:
        lines["vllm"] = [lambda b=b: vllm_op(out, a, b, sa, sb, None) for b in bs]
    times = time_interleaved(list(lines.values()), replays=15)
    return dict(zip(lines, times))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ms", type=int, nargs="+", default=MS)
    ap.add_argument("--nk", nargs="+", metavar="NxK", help="weight shapes (default: Llama-3.1-8B TP1's four)")
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args()
    prop = print_device()
    if prop is None:
        return 2
    vllm_op = load_vllm()
    nks = parse_nks(args.nk) if args.nk else LLAMA_NK
    names = ["plain", "op", "copy+op", "whole", "copy"] + (["vllm"] if vllm_op is not None else [])
    print(f"{'M':>6} {'N':>6} {'K':>6} | " + " ".join(f"{s:>8}" for s in names) + " | copied plain/op")
    results = []
    for n, k in nks:
        for m in args.ms:
            copied = gemm.int8_scaled_mm_copies_activation(m, n, k, m)
            row = {"m": m, "n": n, "k": k, "copied": copied, **probe(m, n, k, vllm_op)}
            results.append(row)
            print(f"{m:6d} {n:6d} {k:6d} | " + " ".join(f"{row[s]:8.1f}" for s in names) +
                  f" | {'yes' if copied else 'no':>6} {row['plain'] / row['op']:8.3f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": prop.name, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
