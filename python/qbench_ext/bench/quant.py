"""The quantization suite: per-token-group FP8/INT8 quantization, our CUDA and Triton kernels
against vLLM's and torch.compile's, on the shapes of real models.

Every provider's output is checked against qbench_ext.reference (run on the GPU, same
input) before it is timed: ours must be bit-exact, peers may round differently by one step
("close"); anything else is reported as a mismatch and not timed.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from tqdm import tqdm

import qbench_ext
from qbench_ext import reference
from qbench_ext._group_quant_args import FP8_DTYPE, SUPPORTED_GROUP_SIZES

from . import records
from .ceilings import measure_ceilings
from .cli import gpu_missing, positive_int, results_path
from .environment import collect_environment
from .peers import (
    VLLM_LIB_ENV,
    ProviderUnavailable,
    VllmQuant,
    VllmSource,
    compiled_reference,
    exception_summary,
    locate_vllm,
)
from .records import ERROR, EVENTS_MARK, MISMATCH, UNAVAILABLE
from .table import format_table
from .timing import time_graph_replay

NAME = "quant"
HELP = "per-token-group FP8/INT8 quantization: ours (CUDA, Triton) vs vLLM and torch.compile"

# vLLM's benchmark's small shapes, where launch cost dominates, then large models' hidden
# sizes at 1024 and 8192 tokens, where memory bandwidth does.
DEFAULT_SHAPES = (
    (32, 128), (64, 256), (16, 512), (1024, 6144), (8192, 6144), (1024, 7168), (8192, 7168),
)
DEFAULT_GROUP_SIZES = (64, 128)
INPUT_SCALE = 8.0  # x = randn * 8, as vLLM's benchmark draws it
SEED = 0

# Column titles by result key, in table order. Ours must match the reference bit for bit.
PROVIDERS = {
    "qbench_cuda": "our CUDA",
    "qbench_triton": "our Triton",
    "vllm_cuda": "vLLM CUDA",
    "vllm_triton": "vLLM Triton",
    "torch_compile": "torch.compile",
}
BIT_EXACT_PROVIDERS = ("qbench_cuda", "qbench_triton")

EXACT, CLOSE = "exact", "close"


@dataclass(frozen=True)
class QuantConfig:
    dtype: str  # "fp8" or "int8"
    m: int
    k: int
    group_size: int
    column_major_scales: bool
    use_ue8m0: bool

    @property
    def q_dtype(self) -> torch.dtype:
        return FP8_DTYPE if self.dtype == "fp8" else torch.int8

    @property
    def options(self) -> dict:
        """The layout/format keyword arguments of the quantizer (INT8 has none)."""
        if self.dtype == "int8":
            return {}
        return {"column_major_scales": self.column_major_scales, "use_ue8m0": self.use_ue8m0}

    @property
    def bytes_moved(self) -> int:
        """bf16 x read, 8-bit q written, fp32 scales written."""
        return self.m * self.k * (2 + 1) + self.m * (self.k // self.group_size) * 4

    def label(self) -> str:
        flags = [
            flag
            for flag, on in (("col-major", self.column_major_scales), ("ue8m0", self.use_ue8m0))
            if on
        ]
        return " ".join([f"{self.m}x{self.k}", f"G={self.group_size}", self.dtype, *flags])

    def as_dict(self) -> dict:
        return {**asdict(self), "bytes": self.bytes_moved}


# ---------------------------------------------------------------------------------------
# Command line


def parse_shape(text: str) -> tuple[int, int]:
    """'1024x6144' -> (1024, 6144)."""
    m, sep, k = text.lower().partition("x")
    try:
        shape = (int(m), int(k))
    except ValueError:
        shape = None
    if not sep or shape is None or min(shape) <= 0:
        raise argparse.ArgumentTypeError(
            f"shape must be MxK with positive M and K (e.g. 1024x6144), got {text!r}"
        )
    return shape


def add_arguments(parser: argparse.ArgumentParser) -> None:
    default_shapes = " ".join(f"{m}x{k}" for m, k in DEFAULT_SHAPES)
    group_sizes = ", ".join(map(str, SUPPORTED_GROUP_SIZES))
    parser.add_argument(
        "--dtype", choices=("fp8", "int8", "both"), default="both",
        help="quantized dtype (default: both)",
    )
    parser.add_argument(
        "--warmup-iters", type=positive_int, default=10, metavar="N",
        help="eager calls of each provider before its graph is captured (default: 10)",
    )
    parser.add_argument(
        "--bench-iters", type=positive_int, default=100, metavar="N",
        help="timed CUDA-graph replays per provider (default: 100)",
    )
    parser.add_argument(
        "--shapes", type=parse_shape, nargs="+", default=list(DEFAULT_SHAPES), metavar="MxK",
        help=f"input shapes, tokens x hidden (default: {default_shapes})",
    )
    parser.add_argument(
        "--group-sizes", type=int, nargs="+", choices=SUPPORTED_GROUP_SIZES,
        default=list(DEFAULT_GROUP_SIZES), metavar="G",
        help=f"quantization group sizes, each one of {group_sizes} (default: 64 128)",
    )
    parser.add_argument(
        "--out", type=results_path, metavar="FILE",
        help="write the results to FILE.json (everything) or FILE.csv (one row per "
        "configuration x provider)",
    )
    parser.add_argument(
        "--vllm-lib", metavar="PATH",
        help="vLLM's compiled ops library, for the vLLM CUDA column (default: "
        f"${VLLM_LIB_ENV}, else an installed vllm package)",
    )
    parser.add_argument(
        "--dry-run", action="store_true",
        help="print the plan (configurations x providers) and exit, without touching a GPU",
    )


def plan_configurations(args: argparse.Namespace) -> list[QuantConfig]:
    """Every configuration to measure, in table order; raises ValueError for a shape whose K
    a group size does not divide."""
    for (m, k), group_size in itertools.product(args.shapes, args.group_sizes):
        if k % group_size:
            raise ValueError(f"shape {m}x{k}: K is not a multiple of group size {group_size}")
    configs = []
    for (m, k), group_size in itertools.product(args.shapes, args.group_sizes):
        if args.dtype in ("fp8", "both"):
            for column_major, ue8m0 in itertools.product((False, True), repeat=2):
                configs.append(QuantConfig("fp8", m, k, group_size, column_major, ue8m0))
        if args.dtype in ("int8", "both"):
            configs.append(QuantConfig("int8", m, k, group_size, False, False))
    return configs


def print_plan(args: argparse.Namespace, configs: list[QuantConfig], vllm: VllmSource) -> None:
    print(f"quant suite: {len(configs)} configurations x {len(PROVIDERS)} providers")
    print("ceilings: device-to-device copy of 1 GiB (events), empty kernel (CUDA-graph replay)")
    print(f"providers: {', '.join(PROVIDERS.values())}")
    print(vllm.describe())
    print(
        f"timing: {args.warmup_iters} warm-up calls, then {args.bench_iters} CUDA-graph replays "
        "per provider"
    )
    if args.out:
        print(f"results: {args.out}")
    print("configurations:")
    for config in configs:
        print(f"  {config.label()}")


# ---------------------------------------------------------------------------------------
# Providers: each turns (config, x) into a zero-argument call returning (q, s)

Call = Callable[[], tuple[torch.Tensor, torch.Tensor]]


def _quantizer(module, config: QuantConfig) -> Callable:
    """The module's quantizer for the config's dtype: qbench_ext, qbench_ext.triton_ref and
    qbench_ext.reference share names and signatures."""
    return getattr(module, f"per_token_group_quant_{config.dtype}")


def _bound(quantize: Callable, config: QuantConfig, x: torch.Tensor) -> Call:
    out_q = torch.empty_like(x, dtype=config.q_dtype)
    return lambda: quantize(x, config.group_size, out_q=out_q, **config.options)


def _providers(vllm: VllmQuant) -> dict[str, Callable[[QuantConfig, torch.Tensor], Call]]:
    def our_triton(config, x):
        from qbench_ext import triton_ref  # imports triton: only when measuring

        return _bound(_quantizer(triton_ref, config), config, x)

    def vllm_cuda(config, x):
        q = torch.empty_like(x, dtype=config.q_dtype)
        groups = config.k // config.group_size
        if config.column_major_scales:  # vLLM reads the layout off the strides
            s = torch.empty(groups, config.m, dtype=torch.float32, device=x.device).t()
        else:
            s = torch.empty(config.m, groups, dtype=torch.float32, device=x.device)
        run = vllm.cuda_quant(config.dtype, x, q, s, config.group_size, config.use_ue8m0)

        def call():
            run()
            return q, s

        return call

    def vllm_triton(config, x):
        out_q = torch.empty_like(x, dtype=config.q_dtype)
        return vllm.triton_quant(
            config.dtype, x, out_q, config.group_size, config.column_major_scales, config.use_ue8m0
        )

    def torch_compile(config, x):
        compiled = compiled_reference(
            _quantizer(reference, config), config.group_size, **config.options
        )
        out_q = torch.empty_like(x, dtype=config.q_dtype)
        return lambda: compiled(x, out_q)

    providers = {
        "qbench_cuda": lambda config, x: _bound(_quantizer(qbench_ext, config), config, x),
        "qbench_triton": our_triton,
        "vllm_cuda": vllm_cuda,
        "vllm_triton": vllm_triton,
        "torch_compile": torch_compile,
    }
    assert providers.keys() == PROVIDERS.keys()
    return providers


# ---------------------------------------------------------------------------------------
# Checks against the reference


def _nan_aware_equal(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Elementwise a == b, with NaN equal to NaN."""
    return (a == b) | (torch.isnan(a) & torch.isnan(b))


def _e4m3_ordinal(q: torch.Tensor) -> torch.Tensor:
    """e4m3 codes as signed integers in the order of their values: the magnitude bits are
    monotone in |value|, so neighbouring values differ by one (+0 and -0 both map to 0)."""
    codes = q.view(torch.uint8).int()
    magnitude = codes & 0x7F
    return torch.where(codes >= 0x80, -magnitude, magnitude)


def _within_one_step(q: torch.Tensor, ref_q: torch.Tensor) -> bool:
    """Every code is the reference's or one of its two neighbouring values; NaN only where
    the reference has NaN."""
    if q.dtype == torch.int8:
        return bool(((q.int() - ref_q.int()).abs() <= 1).all())
    nan, ref_nan = torch.isnan(q.float()), torch.isnan(ref_q.float())
    adjacent = (_e4m3_ordinal(q) - _e4m3_ordinal(ref_q)).abs() <= 1
    return bool(((adjacent & ~nan & ~ref_nan) | (nan & ref_nan)).all())


def check_outputs(
    q: torch.Tensor,
    s: torch.Tensor,
    ref_q: torch.Tensor,
    ref_s: torch.Tensor,
    *,
    bit_exact: bool,
) -> tuple[str, str | None]:
    """(EXACT, CLOSE or MISMATCH, what differs). EXACT: q bytes and scale values equal.
    CLOSE (only where not `bit_exact`): q codes at most one quantization step apart and
    scales within 1e-6 relative."""

    def kind(t: torch.Tensor) -> str:
        return f"{t.dtype} {tuple(t.shape)}"

    if (kind(q), kind(s)) != (kind(ref_q), kind(ref_s)):
        return MISMATCH, f"got q {kind(q)}, s {kind(s)}; expected q {kind(ref_q)}, s {kind(ref_s)}"
    q_differ = int((q.view(torch.uint8) != ref_q.view(torch.uint8)).sum())
    s_differ = int((~_nan_aware_equal(s, ref_s)).sum())
    if q_differ == 0 and s_differ == 0:
        return EXACT, None
    detail = (
        f"{q_differ} of {q.numel()} q codes and {s_differ} of {s.numel()} scales differ from "
        "the reference"
    )
    if bit_exact:
        return MISMATCH, detail
    scales_close = bool(torch.isclose(s, ref_s, rtol=1e-6, atol=0.0, equal_nan=True).all())
    if scales_close and _within_one_step(q, ref_q):
        return CLOSE, detail
    return MISMATCH, detail


# ---------------------------------------------------------------------------------------
# Measuring


def _measurement(check: str, *, timing=None, bytes_moved: int = 0, note: str | None = None) -> dict:
    gbps = bytes_moved / (timing.median_ms * 1e-3) / 1e9 if timing else None
    return records.provider_record(check, timing, note, {"gbps": gbps})


def _measure_provider(key, prepare, config, x, ref_q, ref_s, args) -> dict:
    try:
        call = prepare(config, x)
        q, s = call()
        check, detail = check_outputs(q, s, ref_q, ref_s, bit_exact=key in BIT_EXACT_PROVIDERS)
        if check == MISMATCH:
            return _measurement(check, note=detail)
        timing = time_graph_replay(
            call, warmup_iters=args.warmup_iters, bench_iters=args.bench_iters
        )
    except ProviderUnavailable as exc:
        return _measurement(UNAVAILABLE, note=str(exc))
    except Exception as exc:  # one provider failing must not lose the others' results
        return _measurement(ERROR, note=exception_summary(exc))
    return _measurement(check, timing=timing, bytes_moved=config.bytes_moved, note=detail)


def measure_config(config: QuantConfig, providers, args) -> dict:
    x = torch.randn(config.m, config.k, dtype=torch.bfloat16, device="cuda") * INPUT_SCALE
    ref_q, ref_s = _quantizer(reference, config)(x, config.group_size, **config.options)
    measurements = {
        key: _measure_provider(key, prepare, config, x, ref_q, ref_s, args)
        for key, prepare in providers.items()
    }
    return {"config": config.as_dict(), "providers": measurements}


# ---------------------------------------------------------------------------------------
# Reporting

_CLOSE_MARK = "*"


def _time_cell(measurement: dict) -> str:
    check = measurement["check"]
    if measurement["median_ms"] is None:
        return {MISMATCH: "mismatch", UNAVAILABLE: "n/a", ERROR: "error"}[check]
    marks = (_CLOSE_MARK if check == CLOSE else "") + (
        EVENTS_MARK if measurement["timing"] == "events" else ""
    )
    return f"{measurement['median_ms'] * 1e3:.2f}{marks}"


def _table_row(result: dict, copy_gbps: float) -> list[str]:
    config, measured = result["config"], result["providers"]
    cells = [
        f"{config['m']}x{config['k']}",
        str(config["group_size"]),
        "yes" if config["column_major_scales"] else "no",
        "yes" if config["use_ue8m0"] else "no",
        config["dtype"],
    ]
    cuda_ms = measured["qbench_cuda"]["median_ms"]
    triton_ms = measured["qbench_triton"]["median_ms"]
    for key in PROVIDERS:
        cells.append(_time_cell(measured[key]))
        if key == "qbench_triton":
            cells.append(f"{triton_ms / cuda_ms:.2f}x" if cuda_ms and triton_ms else "-")
    our_gbps = measured["qbench_cuda"]["gbps"]
    cells.append(f"{our_gbps:.0f}" if our_gbps else "-")
    cells.append(f"{100 * our_gbps / copy_gbps:.1f}%" if our_gbps else "-")
    return cells


def format_results_table(results: list[dict], copy_gbps: float) -> str:
    headers = ["shape", "G", "col-major", "UE8M0", "dtype"]
    for key, title in PROVIDERS.items():
        headers.append(f"{title} (us)")
        if key == "qbench_triton":
            headers.append("Triton/CUDA")
    headers += ["our GB/s", "% of copy BW"]
    return format_table(headers, [_table_row(r, copy_gbps) for r in results], left_columns=5)


UNITS = (
    "(us): median time per call in microseconds, from CUDA-graph replays of back-to-back calls",
    "Triton/CUDA: our Triton time / our CUDA time (> 1: our CUDA kernel is faster)",
    "our GB/s: (x + q + scales) bytes / our CUDA time; % of copy BW: of the copy bandwidth above",
)


def _legend(results: list[dict]) -> list[str]:
    lines = []
    if any(m["check"] == CLOSE for r in results for m in r["providers"].values()):
        lines.append(f"{_CLOSE_MARK}: output within one rounding step of the reference, not bit-exact")
    return lines + records.legend(results, "output differs from the reference by more than rounding")


def _note(record: dict) -> str | None:
    # How many codes differ varies per configuration: one line for all the close ones.
    return "close to the reference, not bit-exact" if record["check"] == CLOSE else record["note"]


def _benchmark(args: argparse.Namespace, configs: list[QuantConfig], source: VllmSource) -> int:
    torch.manual_seed(SEED)
    environment = collect_environment()
    vllm = VllmQuant(source)
    environment["vllm"] = records.vllm_status(source, vllm)
    ceilings = measure_ceilings(warmup_iters=args.warmup_iters, bench_iters=args.bench_iters)
    records.print_header(
        environment,
        f"copy bandwidth: {ceilings.copy_gbps:.1f} GB/s (1 GiB device-to-device, read + write); "
        f"empty kernel: {ceilings.empty_kernel_median_us:.2f} us ({ceilings.empty_kernel_timing})",
        vllm,
    )

    providers = _providers(vllm)
    results = []
    interrupted = False
    try:
        with tqdm(configs, desc=NAME, unit="config", file=sys.stderr, disable=None) as bar:
            for config in bar:
                bar.set_postfix_str(config.label())
                results.append(measure_config(config, providers, args))
    except KeyboardInterrupt:
        interrupted = True
        print(f"\ninterrupted: keeping the {len(results)} configurations measured", file=sys.stderr)

    print()
    print("\n".join(UNITS))
    print(format_results_table(results, ceilings.copy_gbps))
    notes = records.distinct_notes(
        results, vllm.describe(), "configuration", title=PROVIDERS.__getitem__, note_of=_note
    )
    for line in _legend(results) + notes:
        print(line)

    report = {
        "suite": NAME,
        "environment": environment,
        "settings": {
            "warmup_iters": args.warmup_iters,
            "bench_iters": args.bench_iters,
            "seed": SEED,
            "input": f"randn(M, K, bfloat16) * {INPUT_SCALE:g}",
        },
        "ceilings": ceilings.as_dict(),
        "notes": vllm.notes + notes,
        "results": results,
        "interrupted": interrupted,
    }
    return records.finish(args.out, report, interrupted, BIT_EXACT_PROVIDERS)


def run(args: argparse.Namespace) -> int:
    try:
        configs = plan_configurations(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    source = locate_vllm(args.vllm_lib)
    if args.dry_run:
        print_plan(args, configs, source)
        return 0
    if gpu_missing("--dry-run prints the plan without one"):
        return 2
    return _benchmark(args, configs, source)
