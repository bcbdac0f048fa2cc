#!/usr/bin/env python
"""GPU check and tuning run of the INT8 scaled GEMM (qbench_ext.gemm.int8_scaled_mm).

1. Correctness: every kernel configuration (forced) and the dispatcher's pick on a few shapes,
   against the exact reference (within one ulp of the output dtype; no NaN left in a poisoned
   output).
2. Timing (CUDA-graph replay) on Llama-3.1-8B TP1 shapes (N, K) = (6144, 4096), (4096, 4096),
   (28672, 4096), (4096, 14336) for M in 1 .. 16384: ours (dispatcher), every configuration of
   the table, torch._int_mm (int32 out, no scaling: cuBLASLt's bare int8 GEMM), and vLLM's
   cutlass_scaled_mm when QBENCH_VLLM_LIB points at vLLM's _C.abi3.so. Per-token activation
   scales, per-channel weight scales, bf16 output, no bias (vLLM's W8A8 dynamic case).
   Ours and vLLM's are timed in turns (graph replays alternating), so their ratio does not
   carry the drift of the GPU's clocks over the run.
   Weights rotate through enough copies to exceed the L2 cache, as in a real forward pass
   (--weight-copies 1: one weight, L2-resident between calls, as vLLM's benchmarks time it).
3. Tuning summary: the best configuration per (M, N, K), and per M the configuration with the
   smallest total slowdown over the four (N, K): candidates for the dispatch table in
   csrc/gemm/int8_scaled_mm_dispatch.cpp.

    python scripts/gpu_check_gemm.py [--json results.json] [--quick] [--bias] [--ms M ...] [--nk NxK ...]
    QBENCH_VLLM_LIB=/path/to/vllm/_C.abi3.so python scripts/gpu_check_gemm.py

Exit status 1 if a correctness check fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import torch

from qbench_ext import gemm, reference_gemm
from qbench_ext.bench.gemm import copies_past_l2
from qbench_ext.bench.timing import calls_in_turn, time_graph_replays_in_turns

LLAMA_NK = [(6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336)]
MS = [1, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
L2_BYTES = 50 * 2**20


def make(m, n, k, *, per_token=True, per_channel=True, bias=False, out_dtype=torch.bfloat16, copies=1, seed=0,
         compact_a=False):
    """Random operands. a lies in memory of a multiple of 256 rows, as scaled_int8_quant's
    output does (which lets the kernels load whole tiles), unless compact_a."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    rows = m if compact_a else gemm.whole_tile_rows(m)
    a = torch.randint(-128, 128, (rows, k), dtype=torch.int8, device="cuda", generator=g)[:m]
    ws = [torch.randint(-128, 128, (n, k), dtype=torch.int8, device="cuda", generator=g) for _ in range(copies)]
    sa = (torch.rand((m, 1) if per_token else (1, 1), device="cuda", generator=g) + 0.5) * 1e-3
    sb = (torch.rand((n,) if per_channel else (1,), device="cuda", generator=g) + 0.5) * 1e-3
    b = (torch.randn(n, device="cuda", generator=g) * 4).to(out_dtype) if bias else None
    return a, [w.t() for w in ws], sa, sb, b


# --------------------------------------------------------------------------------------------
# Correctness


def check_correctness(configs) -> bool:
    shapes = [(1, 4096, 4096), (7, 208, 48), (16, 6144, 4096), (33, 1040, 1008), (100, 4096, 14336),
              (300, 28672, 4096), (1000, 1040, 1008), (4096, 4096, 4096)]
    variants = [dict(per_token=True, per_channel=True, bias=True, out_dtype=torch.bfloat16),
                dict(per_token=False, per_channel=False, bias=False, out_dtype=torch.float16)]
    ok = True
    print("== correctness (within 1 ulp of the exact result; NaN-poisoned outputs) ==")
    for (m, n, k) in shapes:
        for vi, v in enumerate(variants):
            a, (b,), sa, sb, bias = make(m, n, k, seed=m + n + k + vi, **v)
            exact = reference_gemm.int8_scaled_mm_exact(a, b, sa, sb, bias)
            runs = [("default", None)] + [(name, i) for i, name in enumerate(configs)]
            outs = {}
            for name, cid in runs:
                out = torch.full((m, n), float("nan"), dtype=v["out_dtype"], device="cuda")
                try:
                    if cid is None:
                        gemm.int8_scaled_mm(a, b, sa, sb, v["out_dtype"], bias, out=out)
                    else:
                        gemm._int8_scaled_mm_config(a, b, sa, sb, cid, v["out_dtype"], bias, out=out)
                    torch.cuda.synchronize()
                except Exception as exc:  # noqa: BLE001
                    print(f"  FAIL M={m} N={n} K={k} {name}: {type(exc).__name__}: {exc}")
                    ok = False
                    continue
                r = reference_gemm.compare_to_exact(out, exact, bias)
                bad = r["nan"] > 0 or r["beyond_one_ulp"] > 0 or r["frac_differ"] * m * n > max(2, 1e-3 * m * n)
                if bad:
                    ok = False
                    print(f"  FAIL M={m} N={n} K={k} {v['out_dtype']} {name}: {r}")
                outs[name] = out
            base = outs.get("default")
            if base is not None:
                for name, o in outs.items():
                    if not torch.equal(o, base):
                        print(f"  note: M={m} N={n} K={k} {name} not bit-identical to the default")
        print(f"  M={m:5d} N={n:5d} K={k:5d}: {'ok' if ok else 'FAILURES so far'}")
    return ok


# --------------------------------------------------------------------------------------------
# Timing


def rotation_copies(m, n, k):
    """Copies of the operands (a and the weight) a timed problem rotates through, by the
    benchmark's rule (qbench_ext.bench.gemm.copies_past_l2)."""
    return copies_past_l2(m * k + n * k, L2_BYTES)


def time_interleaved(fn_lists, replays=7):
    """Median time per call (us) of each list of callables (cycled), from CUDA-graph replays
    taken in turns (bench/timing.py): a drift of the clocks during the run then moves every
    figure alike, so the ratios between them hold."""
    timings = time_graph_replays_in_turns(
        [calls_in_turn(fns) for fns in fn_lists], warmup_iters=[len(fns) for fns in fn_lists], bench_iters=replays
    )
    return [t.median_ms * 1e3 for t in timings]


def time_calls(fns, replays=7):
    """Median time per call (us) of the callables fns (cycled), from CUDA-graph replays."""
    return time_interleaved([fns], replays)[0]


def load_vllm():
    path = os.environ.get("QBENCH_VLLM_LIB")
    if not path:
        return None
    try:
        torch.ops.load_library(path)
        return torch.ops._C.cutlass_scaled_mm
    except Exception as exc:  # noqa: BLE001
        print(f"could not load vLLM's library {path}: {type(exc).__name__}: {exc}")
        return None


def bench(configs, ms, nks, with_bias, vllm_op, compact_a, weight_copies=None):
    results = []
    print("\n== timing: us per call (TOPS), CUDA-graph replay; bf16 out, per-token x per-channel scales"
          f"{', bias' if with_bias else ''} ==")
    hdr = f"{'M':>6} {'N':>6} {'K':>6} | {'ours':>16} {'pick':>4} | {'vLLM':>16} {'ours/vLLM':>9} | {'_int_mm':>16} | best config"
    print(hdr)
    for (n, k) in nks:
        for m in ms:
            copies = weight_copies or rotation_copies(m, n, k)
            a, bs, sa, sb, bias = make(m, n, k, bias=with_bias, copies=copies, compact_a=compact_a)
            out = torch.empty(m, n, dtype=torch.bfloat16, device="cuda")
            flops = 2.0 * m * n * k
            row = {"m": m, "n": n, "k": k, "pick": gemm.int8_scaled_mm_pick_config(m, n, k), "configs": {}}

            def t(timed):
                try:
                    return timed()
                except Exception as exc:  # noqa: BLE001
                    torch.cuda.synchronize()
                    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"

            ours = [lambda b=b: gemm.int8_scaled_mm(a, b, sa, sb, torch.bfloat16, bias, out=out) for b in bs]
            if vllm_op is not None:
                # Ours and vLLM's in turns: their ratio is the figure the table is tuned on.
                vllm = [lambda b=b: vllm_op(out, a, b, sa, sb, bias) for b in bs]
                pair = t(lambda: time_interleaved([ours, vllm], replays=15))
                row["ours_us"], row["vllm_us"] = pair if isinstance(pair, list) else (pair, pair)
            else:
                row["ours_us"] = t(lambda: time_calls(ours))
            for cid, name in enumerate(configs):
                row["configs"][name] = t(lambda cid=cid: time_calls(
                    [lambda b=b: torch.ops.qbench_ext.int8_scaled_mm_config(out, a, b, sa.reshape(-1), sb, bias, cid)
                     for b in bs]))
            row["int_mm_us"] = t(lambda: time_calls([lambda b=b: torch._int_mm(a, b) for b in bs]))

            def fmt(v):
                return f"{v:8.1f} ({flops / v / 1e6:5.0f})" if isinstance(v, float) else f"{'n/a':>16}"

            timed = {c: v for c, v in row["configs"].items() if isinstance(v, float)}
            best = min(timed, key=timed.get) if timed else None
            row["best_config"] = best
            ratio = (f"{row['ours_us'] / row['vllm_us']:9.2f}"
                     if isinstance(row.get("vllm_us"), float) and isinstance(row["ours_us"], float) else f"{'':>9}")
            print(f"{m:6d} {n:6d} {k:6d} | {fmt(row['ours_us'])} {row['pick']:4d} | {fmt(row.get('vllm_us'))} {ratio} | "
                  f"{fmt(row['int_mm_us'])} | {best} {timed.get(best, float('nan')):.1f}", flush=True)
            results.append(row)
            del a, bs, out
    return results


def summarize(configs, results):
    print("\n== every configuration, us per call (x = failed) ==")
    short = [f"c{i}" for i in range(len(configs))]
    for i, name in enumerate(configs):
        print(f"  c{i} = {name}")
    print(f"{'M':>6} {'N':>6} {'K':>6} " + " ".join(f"{s:>8}" for s in short))
    for r in results:
        cells = [r["configs"][c] for c in configs]
        print(f"{r['m']:6d} {r['n']:6d} {r['k']:6d} " +
              " ".join(f"{v:8.1f}" if isinstance(v, float) else f"{'x':>8}" for v in cells))
    print("\n== per M: configuration with the smallest geometric-mean slowdown vs the per-shape best ==")
    for m in sorted({r["m"] for r in results}):
        rows = [r for r in results if r["m"] == m]
        score = {}
        for c in configs:
            vals = []
            for r in rows:
                timed = [v for v in r["configs"].values() if isinstance(v, float)]
                v = r["configs"][c]
                if not isinstance(v, float) or not timed:
                    vals = None
                    break
                vals.append(math.log(v / min(timed)))
            if vals:
                score[c] = math.exp(sum(vals) / len(vals))
        ranked = sorted(score, key=score.get)[:3]
        pick = configs[rows[0]["pick"]]
        print(f"  M={m:6d}: " + ", ".join(f"{c} x{score[c]:.3f}" for c in ranked) +
              f"   (table picks {pick} x{score.get(pick, float('nan')):.3f})")


def print_device():
    """Prints the GPU and torch version; returns the device's properties, or None without a GPU."""
    if not torch.cuda.is_available():
        print("needs a CUDA GPU")
        return None
    prop = torch.cuda.get_device_properties(0)
    print(f"device: {prop.name}, sm_{prop.major}{prop.minor}, {prop.multi_processor_count} SMs; torch {torch.__version__}")
    return prop


def parse_nks(shapes):
    """["6144x4096", ...] -> [(6144, 4096), ...]"""
    return [tuple(int(v) for v in shape.split("x")) for shape in shapes]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write all results to this file")
    ap.add_argument("--quick", action="store_true", help="fewer M values, for a smoke run")
    ap.add_argument("--bias", action="store_true", help="time with a bias")
    ap.add_argument("--no-correctness", action="store_true")
    ap.add_argument("--compact-a", action="store_true",
                    help="time with a in memory of exactly M rows (a user's tensor) rather than one of a "
                         "multiple of 256 rows (scaled_int8_quant's output)")
    ap.add_argument("--weight-copies", type=int, metavar="C",
                    help="rotate through C weight copies (1: one weight that stays in the L2 between calls, as "
                         "vLLM's benchmarks time it; default: enough copies to exceed the L2)")
    ap.add_argument("--ms", type=int, nargs="+", help="the M values to time (default: 1 .. 16384)")
    ap.add_argument("--nk", nargs="+", metavar="NxK",
                    help="the weight shapes to time, e.g. 8192x8192 (default: Llama-3.1-8B TP1's four)")
    args = ap.parse_args()
    prop = print_device()
    if prop is None:
        return 2
    configs = gemm.int8_scaled_mm_configs()
    t0 = time.time()
    ok = True if args.no_correctness else check_correctness(configs)
    print(f"correctness: {'PASS' if ok else 'FAIL'} ({time.time() - t0:.0f} s)")
    vllm_op = load_vllm()
    ms = args.ms or ([1, 16, 128, 1024, 8192] if args.quick else MS)
    t0 = time.time()
    nks = parse_nks(args.nk) if args.nk else LLAMA_NK
    results = bench(configs, ms, nks, args.bias, vllm_op, args.compact_a, args.weight_copies)
    summarize(configs, results)
    print(f"timing took {time.time() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": prop.name, "configs": configs, "correct": ok, "results": results}, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
