"""The default suite: what `python -m qbench_ext.bench` runs without a suite name.

Ceilings first (copy bandwidth, empty-kernel launch floor, and the matrix rates of a large
BF16 GEMM through cuBLAS and a large INT8 GEMM through our int8_scaled_mm), then every timing
suite at its defaults (quant, then gemm where it exists), then a summary per kernel family:
our speed-up over the best peer and our share of the ceiling.

    python -m qbench_ext.bench                      # everything, at the suites' defaults
    python -m qbench_ext.bench --quick --out r.json # a reduced set, all reports in one file
    python -m qbench_ext.bench --dry-run            # the plan, without a GPU

Each suite runs through its own command line (its parser and run function, with --out to a
temporary file that is read back), so the default suite measures exactly what the suite's
subcommand would. Ctrl-C stops after what was measured so far: the summary of it is printed,
--out is written with it, and the exit status is 130.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import torch

from .ceilings import (
    MATRIX_CEILING_SIZE,
    measure_bf16_matmul,
    measure_ceilings,
    measure_int8_matmul,
)
from .cli import gpu_missing
from .environment import collect_environment
from .results import read_results, write_results
from .table import format_table

NAME = "default"
HELP = "ceilings, every suite at its defaults, and a summary per kernel family"

# --quick: the quant suite on a launch-bound and a bandwidth-bound shape, one group size;
# other suites get their own --quick where they have one.
QUICK_ARGS = {"quant": ["--shapes", "32x128", "8192x7168", "--group-sizes", "128"]}
MATRIX_SIZE = MATRIX_CEILING_SIZE  # the matrix-rate ceilings: an M = N = K GEMM
# Dense datasheet rates (tera-ops per second), to put the measured matrix rates in context;
# only for GPUs whose name identifies the part exactly (H100 SXM, H200).
DATASHEET_DENSE_TOPS = {
    "H100 80GB HBM3": {"bf16": 989.4, "int8": 1978.9},
    "H200": {"bf16": 989.4, "int8": 1978.9},
}
EXIT_INTERRUPTED = 130


def _json_path(text: str) -> str:
    if Path(text).suffix.lower() != ".json":
        raise argparse.ArgumentTypeError(
            f"the default suite writes one JSON document; --out must end in .json, got {text!r}"
        )
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick", action="store_true",
        help="a reduced set: quant on 32x128 and 8192x7168 with group size 128, gemm with "
        "its --quick",
    )
    parser.add_argument(
        "--out", type=_json_path, metavar="FILE.json",
        help="write the ceilings, every suite's report and the summary to FILE.json",
    )
    parser.add_argument(
        "--vllm-lib", metavar="PATH", help="passed to the quant suite (its vLLM CUDA column)"
    )
    parser.add_argument(
        "--dry-run", action="store_true",
        help="print the plan (every suite's plan) and exit, without touching a GPU",
    )


# ---------------------------------------------------------------------------------------
# Results, read the same way by the summary, `compare` and `report`


def is_ours(provider: str) -> bool:
    """Our providers in the quant suite's naming (qbench_*); see our_providers for a report."""
    return provider.startswith("qbench")


def is_timed(measurement: dict | None) -> bool:
    return bool(measurement) and measurement.get("median_ms") is not None


def report_providers(report: dict) -> list[str]:
    names: dict[str, None] = {}
    for result in report.get("results", []):
        names.update(dict.fromkeys(result.get("providers", {})))
    return list(names)


def our_providers(report: dict) -> set[str]:
    """Every provider that runs our code: the gemm suite lists its providers' backends in
    settings (ours: qbench and triton, our Triton kernels) and its main ones in
    settings["ours"]; the quant suite names ours qbench_*."""
    settings = report.get("settings") or {}
    ours = {p for p in report_providers(report) if is_ours(p)}
    ours.update(settings.get("ours") or [])
    for name, cfg in (settings.get("providers") or {}).items():
        if isinstance(cfg, dict) and cfg.get("backend") in ("qbench", "triton"):
            ours.add(name)
    return ours


def same_job(report: dict, ours: str, peer: str) -> bool:
    """Whether `peer` computes what `ours` computes, so that their times compare: in the gemm
    suite the same operand dtype, weight and activation scaling and activation quantisation
    (settings["providers"]); in the quant suite every provider of a configuration does."""
    configs = (report.get("settings") or {}).get("providers") or {}
    if ours not in configs:
        return True

    def job(name: str):
        cfg = configs.get(name) or {}
        return tuple(cfg.get(key) for key in ("dtype", "w", "a", "no_a_quant"))

    return job(ours) == job(peer)


def primary_providers(report: dict) -> list[str]:
    """The kernels a suite ships, each summarized on its own: settings["ours"] where the
    report lists them (the gemm suite: one per scaling configuration), else the first of
    our providers (the quant suite: our CUDA kernel)."""
    present = report_providers(report)
    listed = (report.get("settings") or {}).get("ours")
    if listed:
        return [p for p in listed if p in present]
    ours = our_providers(report)
    return [p for p in present if p in ours][:1]


def primary_provider(report: dict) -> str | None:
    primaries = primary_providers(report)
    return primaries[0] if primaries else None


_LABEL_SKIP = ("bytes", "flops", "label")


def config_label(suite: str, config: dict) -> str:
    """A short name for a configuration: the quant suite's own, else the config's `label`,
    else its fields."""
    if suite == "quant" and {"dtype", "m", "k", "group_size"} <= config.keys():
        flags = [
            flag
            for flag, key in (("col-major", "column_major_scales"), ("ue8m0", "use_ue8m0"))
            if config.get(key)
        ]
        return " ".join(
            [f"{config['m']}x{config['k']}", f"G={config['group_size']}", config["dtype"], *flags]
        )
    if config.get("label"):
        return str(config["label"])
    if {"m", "n", "k"} <= config.keys():
        layer = f" {config['layer']}" if config.get("layer") else ""
        return f"M={config['m']} N={config['n']} K={config['k']}{layer}"
    return " ".join(f"{key}={value}" for key, value in config.items() if key not in _LABEL_SKIP)


def family_of(suite: str, config: dict) -> str:
    if suite == "quant":
        return f"per-token-group {str(config.get('dtype', '?')).upper()}"
    if suite == "gemm":
        return "INT8 GEMM"
    return suite


def gemm_flops(config: dict) -> float | None:
    """2 M N K of a GEMM configuration (its `flops` where it records one)."""
    if config.get("flops"):
        return float(config["flops"])
    if {"m", "n", "k"} <= config.keys():
        return 2.0 * config["m"] * config["n"] * config["k"]
    return None


def rate(suite: str, config: dict, measurement: dict | None) -> float | None:
    """The throughput of a timed measurement: GB/s for quant, TFLOP/s for gemm."""
    if not is_timed(measurement):
        return None
    seconds = measurement["median_ms"] * 1e-3
    if suite == "gemm":
        if measurement.get("tflops") is not None:
            return float(measurement["tflops"])
        flops = gemm_flops(config)
        return flops / seconds / 1e12 if flops else None
    if measurement.get("gbps") is not None:
        return float(measurement["gbps"])
    return config["bytes"] / seconds / 1e9 if config.get("bytes") else None


RATE_UNITS = {"quant": "GB/s", "gemm": "TFLOP/s"}


def ceiling_for(suite: str, ceilings: dict) -> tuple[str, float] | None:
    """(what, value) of the ceiling a suite's rates are read against, from a ceilings dict:
    quant: the copy bandwidth; gemm: the INT8 matrix rate measured on MATRIX_SIZE^3."""
    if suite == "quant" and ceilings.get("copy_gbps"):
        return "copy bandwidth", float(ceilings["copy_gbps"])
    if suite == "gemm":
        for key in ("int8_tops", "int8_tflops", "int8_gemm_tops"):
            if ceilings.get(key):
                size = ceilings.get("matrix_size", MATRIX_SIZE)
                return f"our INT8 GEMM at {size}^3", float(ceilings[key])
    return None


# ---------------------------------------------------------------------------------------
# Summary


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _spread(pairs: list[tuple[float, str]]) -> dict | None:
    """geomean, worst (smallest) and best of (value, configuration) pairs."""
    if not pairs:
        return None
    worst, best = min(pairs), max(pairs)
    return {
        "n": len(pairs),
        "geomean": _geomean([v for v, _ in pairs]),
        "worst": worst[0],
        "worst_config": worst[1],
        "best": best[0],
        "best_config": best[1],
    }


def summarize(reports: dict[str, dict], ceilings: dict | None = None) -> list[dict]:
    """One entry per kernel family: our primary provider's speed-up over the fastest peer
    doing the same job in the same configuration (peer time / our time: geomean, worst, best
    over the configurations where both were timed), and its share of the ceiling."""
    summary: list[dict] = []
    for suite, report in reports.items():
        if not all("providers" in r for r in report.get("results", [])):
            continue  # not timings
        everything_ours = our_providers(report)
        ceiling = ceiling_for(suite, ceilings or {}) or ceiling_for(
            suite, report.get("ceilings") or {}
        )
        families: dict[tuple[str, str], dict] = {}
        for ours in primary_providers(report):
            for result in report.get("results", []):
                config, measured = result["config"], result["providers"]
                family = families.setdefault(
                    (family_of(suite, config), ours),
                    {"speedups": [], "shares": [], "configurations": 0},
                )
                family["configurations"] += 1
                label = config_label(suite, config)
                mine = measured.get(ours)
                if not is_timed(mine):
                    continue
                peers = [
                    m["median_ms"] for p, m in measured.items()
                    if p not in everything_ours and is_timed(m) and same_job(report, ours, p)
                ]
                if peers:
                    family["speedups"].append((min(peers) / mine["median_ms"], label))
                value = rate(suite, config, mine)
                if ceiling and value:
                    family["shares"].append((value / ceiling[1], label))
        for (name, ours), family in families.items():
            summary.append(
                {
                    "family": name,
                    "suite": suite,
                    "ours": ours,
                    "configurations": family["configurations"],
                    "speedup_vs_best_peer": _spread(family["speedups"]),
                    "ceiling": (
                        {"name": ceiling[0], "value": ceiling[1], "unit": RATE_UNITS.get(suite)}
                        if ceiling else None
                    ),
                    "share_of_ceiling": _spread(family["shares"]),
                }
            )
    return summary


def format_summary(summary: list[dict]) -> str:
    if not summary:
        return "summary: nothing was measured"
    rows = []
    for entry in summary:
        speed, share, ceiling = (
            entry["speedup_vs_best_peer"], entry["share_of_ceiling"], entry["ceiling"]
        )
        rows.append(
            [
                entry["family"],
                entry["ours"],
                f"{speed['geomean']:.2f}x" if speed else "-",
                f"{speed['worst']:.2f}x" if speed else "-",
                speed["worst_config"] if speed else "-",
                f"{speed['n'] if speed else 0}/{entry['configurations']}",
                f"{100 * share['geomean']:.1f}%" if share else "-",
                f"{100 * share['worst']:.1f}%" if share else "-",
                f"{100 * share['best']:.1f}%" if share else "-",
                f"{ceiling['name']} {ceiling['value']:.0f} {ceiling['unit']}" if ceiling else "-",
            ]
        )
    headers = [
        "family", "ours", "vs best peer", "worst", "worst at", "compared",
        "of ceiling", "worst", "best", "ceiling",
    ]
    legend = (
        "vs best peer: the fastest peer's time / our time, geometric mean over the "
        "configurations where both were timed (> 1: ours is faster); worst: the smallest.\n"
        "of ceiling: our rate / the ceiling (quant: bytes moved per second vs copy "
        "bandwidth; gemm: TFLOP/s vs our INT8 GEMM's rate at the matrix-rate size), "
        "geometric mean, worst and best."
    )
    return "\n".join([format_table(headers, rows, left_columns=2), legend])


# ---------------------------------------------------------------------------------------
# Ceilings: matrix rates


def measure_matrix_rates() -> dict:
    """The matrix-rate ceilings of ceilings.py (cuBLAS BF16 and our INT8 GEMM, size^3), in
    flat keys: matrix_size, bf16_tflops, int8_tops, and each measurement's record; a GEMM
    that fails (e.g. our INT8 kernel on a GPU it was not built for) leaves `<key>_error`."""
    from .peers import exception_summary

    flat: dict = {}
    for key, measure, rate_key in (
        ("bf16_matmul", measure_bf16_matmul, "bf16_tflops"),
        ("int8_matmul", measure_int8_matmul, "int8_tops"),
    ):
        try:
            ceiling = measure()
        except Exception as exc:
            flat[f"{key}_error"] = exception_summary(exc)
        else:
            flat["matrix_size"] = ceiling.m
            flat[rate_key] = ceiling.tflops
            flat[key] = ceiling.as_dict()
        torch.cuda.empty_cache()
    return flat


def _datasheet(gpu_name: str | None) -> dict | None:
    for part, rates in DATASHEET_DENSE_TOPS.items():
        if gpu_name and part in gpu_name:
            return rates
    return None


def describe_ceilings(ceilings: dict, gpu_name: str | None) -> list[str]:
    lines = []
    if "copy_gbps" in ceilings:
        lines.append(
            f"copy bandwidth: {ceilings['copy_gbps']:.1f} GB/s (1 GiB device-to-device, read + "
            f"write); empty kernel: {ceilings['empty_kernel_median_us']:.2f} us "
            f"({ceilings['empty_kernel_timing']})"
        )
    sheet = _datasheet(gpu_name)
    parts = []
    for kind, key, what, unit in (
        ("bf16", "bf16_tflops", "BF16 cuBLAS", "TFLOP/s"),
        ("int8", "int8_tops", "INT8 our int8_scaled_mm", "TOPS"),
    ):
        if ceilings.get(key):
            text = f"{what} {ceilings[key]:.0f} {unit}"
            if sheet:
                share = 100 * ceilings[key] / sheet[kind]
                text += f" ({share:.0f}% of the {sheet[kind]:.0f} dense datasheet rate)"
            parts.append(text)
        elif ceilings.get(f"{kind}_matmul_error"):
            parts.append(f"{what}: {ceilings[f'{kind}_matmul_error']}")
    if parts:
        size = ceilings.get("matrix_size", MATRIX_SIZE)
        lines.append(f"matrix rates at {size}^3: " + "; ".join(parts))
    return lines


# ---------------------------------------------------------------------------------------
# Running


def _suite_argv(name: str, parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The command line the default suite gives suite `name`: its defaults, or its quick set."""
    options = {option for action in parser._actions for option in action.option_strings}
    argv: list[str] = []
    if args.quick:
        if name in QUICK_ARGS:
            argv += QUICK_ARGS[name]
        elif "--quick" in options:
            argv.append("--quick")
    if args.vllm_lib and "--vllm-lib" in options:
        argv += ["--vllm-lib", args.vllm_lib]
    return argv


def _suites() -> dict:
    from . import SUITES  # the package imports this module: look the suites up when running

    return SUITES


def _print_plan(args: argparse.Namespace, suites: dict) -> int:
    from . import build_parser

    names = list(suites)
    print(
        f"default suite{' (quick)' if args.quick else ''}: ceilings, then "
        f"{', '.join(names)}, then a summary per kernel family"
    )
    print(
        "ceilings: device-to-device copy of 1 GiB (events), empty kernel (CUDA-graph replay), "
        f"BF16 GEMM {MATRIX_SIZE}^3 through cuBLAS and INT8 GEMM {MATRIX_SIZE}^3 through "
        "qbench_ext.int8_scaled_mm (CUDA-graph replay)"
    )
    if args.out:
        print(f"results: {args.out} (every suite's report and the summary)")
    status = 0
    for name in names:
        parser = build_parser(suite=name)
        argv = _suite_argv(name, parser, args)
        print()
        print(f"== {name}: {' '.join(['python -m qbench_ext.bench', name, *argv])}")
        suite_args = parser.parse_args([*argv, "--dry-run"])
        status = max(status, suite_args.run(suite_args))
    return status


def _write(args, environment, ceilings, reports, statuses, summary, interrupted) -> None:
    if not args.out:
        return
    document = {
        "suite": NAME,
        "environment": environment,
        "settings": {"quick": args.quick, "suites": list(_suites())},
        "ceilings": ceilings,
        "reports": reports,
        "exit_status": statuses,
        "summary": summary,
        "interrupted": interrupted,
    }
    write_results(args.out, document)
    print(f"results written to {args.out}")


def run(args: argparse.Namespace) -> int:
    from . import build_parser

    suites = _suites()
    if args.dry_run:
        return _print_plan(args, suites)
    if gpu_missing("--dry-run prints the plan without one"):
        return 2

    stages = ["ceilings", *suites]
    environment = collect_environment()
    ceilings: dict = {}
    reports: dict[str, dict] = {}
    statuses: dict[str, int] = {}
    interrupted = None
    stage = stages[0]
    with tempfile.TemporaryDirectory(prefix="qbench-") as tmp:
        try:
            for number, stage in enumerate(stages, 1):
                print(f"\n[{number}/{len(stages)}] {stage}", flush=True)
                if stage == "ceilings":
                    ceilings = measure_ceilings(warmup_iters=10, bench_iters=100).as_dict()
                    ceilings.update(measure_matrix_rates())
                    for line in describe_ceilings(ceilings, environment["gpu_name"]):
                        print(line)
                    continue
                parser = build_parser(suite=stage)
                out = Path(tmp) / f"{stage}.json"
                argv = [*_suite_argv(stage, parser, args), "--out", str(out)]
                suite_args = parser.parse_args(argv)
                statuses[stage] = suite_args.run(suite_args)
                if out.exists():
                    reports[stage] = read_results(out)
        except KeyboardInterrupt:
            interrupted = stage
            partial = Path(tmp) / f"{stage}.json"  # a suite writes what it measured, then re-raises
            if partial.exists():
                reports[stage] = read_results(partial)
            print(f"\ninterrupted during {stage}: summarizing what was measured", file=sys.stderr)
    summary = summarize(reports, ceilings)
    print(f"\nsummary ({', '.join(reports) or 'no suite completed'})")
    for line in describe_ceilings(ceilings, environment["gpu_name"]):
        print(line)
    print(format_summary(summary))
    _write(args, environment, ceilings, reports, statuses, summary, interrupted)
    if interrupted:
        return EXIT_INTERRUPTED
    return max(statuses.values(), default=0)
