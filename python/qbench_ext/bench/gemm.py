"""The GEMM suite: BF16 vs INT8 GEMMs on the linear-layer shapes of real models, across batch
sizes: ours (CUTLASS, Triton) against cuBLAS BF16, vLLM's cutlass_scaled_mm, torch._int_mm
and torch._scaled_mm (FP8 row-wise).

Providers are named as in vLLM's bench_int8_gemm.py: `int8-<w>-w-<a>-a` quantizes the weight
per tensor or per channel ahead of time, and the activation per tensor or per token inside
the timed call (dynamic quantization: per-token with the quantizer's dynamic mode, per-tensor
as amax / 127 then static quantization); `-noquant` quantizes the activation ahead as well, so
that only the GEMM is timed. `vllm-` and `triton-` prefixes run the same configurations on
vLLM's ops and on our Triton kernels.

Every provider's output is checked before it is timed, against a float64 computation from
the same operands it used (for INT8: the quantized operands and scales, by
qbench_ext.reference_gemm's exact specification, within one unit in the last place; for BF16
and FP8: within FLOAT_RTOL of the largest output); a mismatch is reported and not timed.
Times are medians of CUDA-graph replays (bench/timing.py), the providers' replays of one
shape and batch size taken in turns so that their ratios do not carry the drift of the GPU's
clocks (large GEMMs reach its power limit within milliseconds); TFLOP/s = 2 * M * N * K / time.

By default every call of a provider reuses one weight, as vLLM's benchmarks do: a weight that
fits the L2 may then be read from it rather than from DRAM, depending on what else the L2
holds (at small M that decides the time). `--rotate-weights` gives each provider copies of
the weight, one a call in turn, whose int8 bytes exceed twice the L2: every call reads its
weight from DRAM, as each layer of a model's forward pass does.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from . import records
from .ceilings import measure_bf16_matmul, measure_ceilings, measure_int8_matmul
from .cli import gpu_missing, positive_int, results_path
from .environment import collect_environment
from .model_shapes import DEFAULT_MODEL, MODEL_CONFIGS, LinearShape, linear_layers, resolve_model
from .peers import (
    VLLM_LIB_ENV,
    ProviderUnavailable,
    VllmOp,
    VllmSource,
    exception_summary,
    load_vllm,
    locate_vllm,
    resolve_vllm_op,
)
from .records import ERROR, EVENTS_MARK, MISMATCH, UNAVAILABLE
from .table import format_table
from .timing import MIN_REPLAY_MS, calls_in_turn, time_events, time_graph_replay, time_graph_replays_in_turns

NAME = "gemm"
HELP = (
    "BF16 vs INT8 GEMMs on real models' linear-layer shapes: ours (CUTLASS, Triton) vs "
    "cuBLAS, vLLM and torch"
)

DEFAULT_BATCH_SIZES = (1, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
QUICK_BATCH_SIZES = (1, 16, 1024, 4096)
DEFAULT_TP_SIZES = (1,)
DEFAULT_MEASURE_MS = 100.0
# Eager calls before a graph is captured: about this long, between 1 and 10 calls.
WARMUP_MS = 20.0
MAX_WARMUP_ITERS = 10
# Timed replays: about --measure-ms of them, within these bounds.
MIN_BENCH_ITERS, MAX_BENCH_ITERS = 10, 100
SEED = 0
OUT_DTYPE = torch.bfloat16
DEVICE = "cuda"
# BF16 and FP8 outputs: max |out - exact| <= FLOAT_RTOL * max |exact| (BF16 rounding of the
# output alone is 2^-9 relative; fp32 accumulation adds far less).
FLOAT_RTOL = 1e-2
# --rotate-weights: copies of the weight whose int8 bytes exceed this many times the L2, at
# most MAX_WEIGHT_COPIES of them.
ROTATION_L2_MULTIPLE = 2
MAX_WEIGHT_COPIES = 8
# Rows of the output checked at a time: bounds the float64 temporaries of the check.
_CHECK_ELEMENTS = 1 << 25

OK = "ok"

# ---------------------------------------------------------------------------------------
# Providers

WEIGHT_SCALES = ("tensor", "channel")
ACTIVATION_SCALES = ("tensor", "token")
# Backends that build_int8_runner runs (same INT8 semantics: int32 accumulation, scales in fp32).
INT8_BACKENDS = ("qbench", "vllm", "triton", "torch-int-mm")
_INT8_PREFIXES = {"qbench": "", "vllm": "vllm-", "triton": "triton-"}
# The INT8 configurations each backend runs by default (vLLM's where it is available).
_DEFAULT_INT8 = {
    "qbench": {("tensor", "tensor"), ("channel", "token")},
    "vllm": {("channel", "token")},
    "triton": set(),
}


def _build_provider_cfgs() -> dict[str, dict]:
    cfgs: dict[str, dict] = {
        "torch-bf16": {
            "dtype": "bf16", "w": None, "a": None, "no_a_quant": True,
            "backend": "torch-bf16", "enabled": True,
        },
    }
    for backend, prefix in _INT8_PREFIXES.items():
        for no_a_quant in (False, True):
            for w, a in (("tensor", "token"), ("tensor", "tensor"), ("channel", "token"),
                         ("channel", "tensor")):
                name = f"{prefix}int8-{w}-w-{a}-a" + ("-noquant" if no_a_quant else "")
                cfgs[name] = {
                    "dtype": "int8", "w": w, "a": a, "no_a_quant": no_a_quant,
                    "backend": backend, "enabled": (w, a) in _DEFAULT_INT8[backend],
                }
    cfgs["torch-int8-mm"] = {
        "dtype": "int8", "w": "channel", "a": "token", "no_a_quant": True,
        "backend": "torch-int-mm", "enabled": False,
    }
    cfgs["torch-fp8-rowwise"] = {
        "dtype": "fp8", "w": "channel", "a": "token", "no_a_quant": True,
        "backend": "torch-fp8", "enabled": False,
    }
    return cfgs


# name -> {dtype, w, a, no_a_quant, backend, enabled}; in table order.
PROVIDER_CFGS: dict[str, dict] = _build_provider_cfgs()


def default_providers(vllm_available: bool) -> list[str]:
    """The providers measured when --providers is not given: the enabled ones, vLLM's only
    where vLLM is available."""
    return [
        name
        for name, cfg in PROVIDER_CFGS.items()
        if cfg["enabled"] and (vllm_available or cfg["backend"] != "vllm")
    ]


def validate_int8_cfg(cfg: dict) -> None:
    """Raises ValueError unless `cfg` is an INT8 configuration that build_int8_runner runs."""
    if not isinstance(cfg, dict):
        raise ValueError(f"a provider configuration must be a dict, got {type(cfg).__name__}")
    for key in ("w", "a", "no_a_quant", "backend"):
        if key not in cfg:
            raise ValueError(f"INT8 configuration {cfg} has no {key!r}")
    if cfg["w"] not in WEIGHT_SCALES:
        raise ValueError(f"cfg['w'] must be one of {WEIGHT_SCALES}, got {cfg['w']!r}")
    if cfg["a"] not in ACTIVATION_SCALES:
        raise ValueError(f"cfg['a'] must be one of {ACTIVATION_SCALES}, got {cfg['a']!r}")
    if not isinstance(cfg["no_a_quant"], bool):
        raise ValueError(f"cfg['no_a_quant'] must be a bool, got {cfg['no_a_quant']!r}")
    if cfg["backend"] not in INT8_BACKENDS:
        raise ValueError(f"cfg['backend'] must be one of {INT8_BACKENDS}, got {cfg['backend']!r}")
    if cfg.get("dtype", "int8") != "int8":
        raise ValueError(f"not an INT8 configuration: dtype {cfg['dtype']!r}")


# ---------------------------------------------------------------------------------------
# vLLM's GEMM and INT8 quantization ops

# Argument names as in vLLM's torch_bindings.cpp; other versions are adapted to by name.
_VLLM_OPS = {
    "cutlass_scaled_mm": ("out", "a", "b", "a_scales", "b_scales", "bias"),
    "dynamic_scaled_int8_quant": ("result", "input", "scale", "azp"),
    "static_scaled_int8_quant": ("result", "input", "scale", "azp"),
}
# Names some versions use for the same arguments.
_VLLM_ARG_ALIASES = {"result": "out", "output": "out", "scale_a": "a_scales", "scale_b": "b_scales"}


def describe_vllm_source(source: VllmSource) -> str:
    """One line, without loading anything: where vLLM's GEMM columns come from."""
    if source.kind == "library":
        return f"vLLM: ops from {source.location} ({source.reason})"
    if source.kind == "package":
        return f"vLLM: ops from the `vllm` package {source.location}"
    return f"vLLM: not available ({source.reason})"


class VllmGemmOps:
    """vLLM's cutlass_scaled_mm and INT8 quantizers, called through the raw ops with outputs
    we allocate (loading needs a GPU process)."""

    def __init__(self, source: VllmSource):
        self.source = source
        self.notes: list[str] = []  # findings to print once, e.g. a schema that differs
        self._ops: dict[str, VllmOp | ProviderUnavailable] = {}
        self._load_error = load_vllm(source)
        if self._load_error is not None:
            return
        for name, expected in _VLLM_OPS.items():
            try:
                self._ops[name] = resolve_vllm_op(name, expected, self.notes)
            except ProviderUnavailable as exc:
                self._ops[name] = exc

    @property
    def available(self) -> bool:
        return self._load_error is None

    def describe(self) -> str:
        """One line: the source, plus each missing op (the reason vLLM's cells read n/a)."""
        if self._load_error is not None:
            return f"vLLM: {self._load_error}"
        line = describe_vllm_source(self.source)
        for failure in self._ops.values():
            if isinstance(failure, ProviderUnavailable):
                line += f"; {failure}"
        return line

    def _call(self, name: str, **values) -> None:
        if self._load_error is not None:
            raise ProviderUnavailable(self.describe())
        vllm_op = self._ops[name]
        if isinstance(vllm_op, ProviderUnavailable):
            raise vllm_op
        args = []
        for arg in vllm_op.op._schema.arguments:
            key = _VLLM_ARG_ALIASES.get(arg.name, arg.name)
            if key in values:
                args.append(values.pop(key))
            elif isinstance(arg.type, torch.OptionalType):
                args.append(None)
            else:
                raise ProviderUnavailable(
                    f"vLLM's {name} takes an unknown argument {arg.name!r}: {vllm_op.op._schema}"
                )
        if any(value is not None for value in values.values()):
            raise ProviderUnavailable(
                f"vLLM's {name} takes none of {sorted(values)}: {vllm_op.op._schema}"
            )
        vllm_op.op(*args)

    # The interface of _QbenchInt8Ops:
    def per_token(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = torch.empty_like(x, dtype=torch.int8)
        s = torch.empty(x.shape[0], 1, dtype=torch.float32, device=x.device)
        self._call("dynamic_scaled_int8_quant", out=q, input=x, scale=s, azp=None)
        return q, s

    def per_tensor(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        q = torch.empty_like(x, dtype=torch.int8)
        self._call("static_scaled_int8_quant", out=q, input=x, scale=scale, azp=None)
        return q

    def scaled_mm(self, aq, b, sa, sb, out: torch.Tensor) -> torch.Tensor:
        self._call("cutlass_scaled_mm", out=out, a=aq, b=b, a_scales=sa, b_scales=sb, bias=None)
        return out


_default_vllm: VllmGemmOps | None = None


def _vllm_ops(vllm: VllmGemmOps | None) -> VllmGemmOps:
    global _default_vllm
    if vllm is not None:
        return vllm
    if _default_vllm is None:
        _default_vllm = VllmGemmOps(locate_vllm(None))
    return _default_vllm


# ---------------------------------------------------------------------------------------
# Our INT8 ops (CUDA or Triton), torch._int_mm


class _QbenchInt8Ops:
    """Our quantizer and GEMM: qbench_ext's CUDA/CUTLASS ops, or their Triton twins."""

    def __init__(self, triton: bool = False):
        if triton:
            from qbench_ext import triton_ref as module  # imports triton: only when measuring
        else:
            import qbench_ext as module
        self._quant = module.scaled_int8_quant
        self._mm = module.int8_scaled_mm

    def per_token(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q, s, _ = self._quant(x)
        return q, s

    def per_tensor(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self._quant(x, scale)[0]

    def scaled_mm(self, aq, b, sa, sb, out: torch.Tensor) -> torch.Tensor:
        return self._mm(aq, b, sa, sb, out_dtype=out.dtype, out=out)


class _TorchIntMmOps(_QbenchInt8Ops):
    """torch._int_mm (cuBLASLt, int32 out), then the scales in a separate fp32 pass; our
    quantizer."""

    def scaled_mm(self, aq, b, sa, sb, out: torch.Tensor) -> torch.Tensor:
        acc = torch._int_mm(aq, b)
        return (acc.float() * sa.view(-1, 1) * sb.view(1, -1)).to(out.dtype)


def per_tensor_scale(x: torch.Tensor) -> torch.Tensor:
    """amax(|x|) / 127 as a (1, 1) fp32 tensor, computed on x's device without a host sync:
    the infinity norm is one reduction (x.abs().amax() would first write |x| out)."""
    amax = torch.linalg.vector_norm(x, ord=math.inf)
    return (amax.float() / 127.0).view(1, 1)


# ---------------------------------------------------------------------------------------
# Runners: one provider's GEMM on fixed operands


class GemmRunner:
    """Calling it runs one provider's configuration on its operands (quantizing the
    activation first, unless pre-quantized) and returns the (M, N) output. `operands()` are
    those of the latest call, (a, scale_a, w, scale_w): a (M, K) and w (N, K) as multiplied,
    scales None for BF16. `kind` says how the output is checked: "int8" against
    reference_gemm's exact result within one ulp, "float" within FLOAT_RTOL."""

    def __init__(self, cfg: dict, kind: str, run: Callable[[], tuple]):
        self.cfg = cfg
        self.kind = kind
        self._run = run
        self._last: tuple | None = None

    def __call__(self) -> torch.Tensor:
        out, *operands = self._run()
        self._last = tuple(operands)
        return out

    def operands(self) -> tuple:
        if self._last is None:
            raise RuntimeError("the runner has not been called yet")
        return self._last


def _check_operands(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype) -> None:
    for x, name, shape in ((a, "a", "(M, K)"), (b, "b", "(N, K)")):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 2:
            raise ValueError(f"{name} must be 2-D {shape}, got shape {tuple(x.shape)}")
        if not x.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"a (M, K) and b (N, K) must share K, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"the output dtype must be torch.bfloat16 or torch.float16, got {dtype}")


def build_int8_runner(
    cfg: dict,
    a: torch.Tensor,
    b: torch.Tensor,
    dtype: torch.dtype = OUT_DTYPE,
    device: torch.device | str | None = None,
    *,
    vllm: VllmGemmOps | None = None,
) -> GemmRunner:
    """A call of one INT8 configuration (see PROVIDER_CFGS) on a (M, K) activation and b
    (N, K) weight, both floating point, moved to `device` (default: a's).

    The weight is quantized now: per channel as the backend's dynamic per-token quantization
    of its rows, per tensor with scale amax / 127 and static quantization. The activation is
    quantized now (`no_a_quant`) or inside every call: per token dynamically, per tensor as
    per_tensor_scale(a) then static quantization. Then out = backend's scaled GEMM of
    (aq, wq.t(), sa, sw) in `dtype`. Raises ValueError for an invalid configuration or
    operands (before touching a GPU), ProviderUnavailable where the backend cannot run it.
    `vllm`: vLLM's ops for the "vllm" backend (default: located and loaded once).
    """
    validate_int8_cfg(cfg)
    _check_operands(a, b, dtype)
    backend = cfg["backend"]
    m, n = a.shape[0], b.shape[0]
    if backend == "torch-int-mm" and m <= 16:
        raise ProviderUnavailable("torch._int_mm needs M > 16")
    device = torch.device(device) if device is not None else a.device
    a, b = a.to(device), b.to(device)
    if backend == "vllm":
        ops = _vllm_ops(vllm)
        if not ops.available:
            raise ProviderUnavailable(ops.describe())
    elif backend == "torch-int-mm":
        ops = _TorchIntMmOps()
    else:
        ops = _QbenchInt8Ops(triton=backend == "triton")

    if cfg["w"] == "channel":
        wq, sw = ops.per_token(b)
    else:
        sw = per_tensor_scale(b)
        wq = ops.per_tensor(b, sw)
    wt = wq.t()  # (K, N), column-major

    def quantize_a() -> tuple[torch.Tensor, torch.Tensor]:
        if cfg["a"] == "token":
            return ops.per_token(a)
        sa = per_tensor_scale(a)
        return ops.per_tensor(a, sa), sa

    out = torch.empty(m, n, dtype=dtype, device=device)
    if cfg["no_a_quant"]:
        aq, sa = quantize_a()

        def run():
            return ops.scaled_mm(aq, wt, sa, sw, out), aq, sa, wq, sw
    else:

        def run():
            aq, sa = quantize_a()
            return ops.scaled_mm(aq, wt, sa, sw, out), aq, sa, wq, sw

    return GemmRunner(cfg, "int8", run)


def build_bf16_runner(
    a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype = OUT_DTYPE
) -> GemmRunner:
    """cuBLAS: a @ b.t() in `dtype` (a (M, K), b (N, K)), into an output of its own."""
    _check_operands(a, b, dtype)
    a, b = a.to(dtype), b.to(dtype)
    out = torch.empty(a.shape[0], b.shape[0], dtype=dtype, device=a.device)

    def run():
        return torch.mm(a, b.t(), out=out), a, None, b, None

    return GemmRunner(PROVIDER_CFGS["torch-bf16"], "float", run)


FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = 448.0


def _fp8_rowwise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (R, K) as e4m3 codes with one fp32 scale per row (amax / 448): (q, s (R, 1))."""
    s = x.abs().amax(dim=1, keepdim=True).float().clamp_min(1e-12) / FP8_MAX
    q = (x.float() / s).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)
    return q, s


def build_fp8_rowwise_runner(
    a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype = OUT_DTYPE
) -> GemmRunner:
    """torch._scaled_mm on e4m3 operands quantized ahead, per token (a) and per channel (b)."""
    _check_operands(a, b, dtype)
    aq, sa = _fp8_rowwise(a)
    wq, sw = _fp8_rowwise(b)
    sw_row = sw.view(1, -1)

    def run():
        out = torch._scaled_mm(aq, wq.t(), scale_a=sa, scale_b=sw_row, out_dtype=dtype)
        return out, aq, sa, wq, sw

    return GemmRunner(PROVIDER_CFGS["torch-fp8-rowwise"], "float", run)


def build_runner(
    name: str,
    a: torch.Tensor,
    b: torch.Tensor,
    dtype: torch.dtype = OUT_DTYPE,
    *,
    vllm: VllmGemmOps | None = None,
) -> GemmRunner:
    """The runner of provider `name` (a key of PROVIDER_CFGS)."""
    if name not in PROVIDER_CFGS:
        raise ValueError(f"unknown provider {name!r}")
    cfg = PROVIDER_CFGS[name]
    if cfg["backend"] == "torch-bf16":
        return build_bf16_runner(a, b, dtype)
    if cfg["backend"] == "torch-fp8":
        return build_fp8_rowwise_runner(a, b, dtype)
    return build_int8_runner(cfg, a, b, dtype, vllm=vllm)


# ---------------------------------------------------------------------------------------
# Checks


def _rows_of(scale: torch.Tensor | None, rows: slice) -> torch.Tensor | None:
    """The scales of `rows`: all of a per-tensor scale, the rows' of a per-row one."""
    if scale is None or scale.numel() == 1:
        return scale
    return scale.reshape(-1, 1)[rows]


def _exact_rows(kind: str, operands: tuple, rows: slice) -> torch.Tensor:
    """float64 result of `rows` of the output, from the runner's operands."""
    from qbench_ext.reference_gemm import int8_scaled_mm_exact

    a, sa, w, sw = operands
    if kind == "int8":
        return int8_scaled_mm_exact(a[rows], w.t(), _rows_of(sa, rows), sw)
    exact = a[rows].to(torch.float64) @ w.to(torch.float64).t()
    if sa is not None:
        exact *= _rows_of(sa, rows).to(torch.float64).reshape(-1, 1)
        exact *= sw.to(torch.float64).reshape(1, -1)
    return exact


def check_output(runner: GemmRunner, out: torch.Tensor) -> tuple[str, float | None, str | None]:
    """(OK or MISMATCH, max |out - exact| / max |exact| (None where not finite), what is
    wrong) for the output of the runner's latest call, row chunk by row chunk."""
    from qbench_ext.reference_gemm import compare_to_exact

    operands = runner.operands()
    m, n = out.shape
    chunk = max(1, _CHECK_ELEMENTS // max(n, 1))
    nan = beyond = 0
    max_err = max_ref = 0.0
    for start in range(0, m, chunk):
        rows = slice(start, min(m, start + chunk))
        exact = _exact_rows(runner.kind, operands, rows)
        got = out[rows]
        if runner.kind == "int8":
            stats = compare_to_exact(got, exact)
            beyond += stats["beyond_one_ulp"]
        nan += int(got.isnan().sum())
        err = (got.to(torch.float64) - exact).abs().nan_to_num(nan=math.inf)
        max_err = max(max_err, float(err.max()) if err.numel() else 0.0)
        max_ref = max(max_ref, float(exact.abs().max()) if exact.numel() else 0.0)
    rel = max_err / max_ref if max_ref > 0 else max_err
    problems = []
    if nan:
        problems.append(f"{nan} NaN outputs")
    if runner.kind == "int8" and beyond:
        problems.append(f"{beyond} of {m * n} outputs more than one ulp from the exact result")
    if runner.kind == "float" and rel > FLOAT_RTOL:
        problems.append(f"max |error| is {rel:.3g} of max |exact|, above {FLOAT_RTOL:g}")
    finite_rel = rel if math.isfinite(rel) else None
    if problems:
        return MISMATCH, finite_rel, "; ".join(problems)
    return OK, finite_rel, None


# ---------------------------------------------------------------------------------------
# Command line


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _model(text: str) -> str:
    try:
        return resolve_model(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _provider(text: str) -> str:
    if text != "all" and text not in PROVIDER_CFGS:
        raise argparse.ArgumentTypeError(
            f"unknown provider {text!r}; choose from all, {', '.join(PROVIDER_CFGS)}"
        )
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    batch_sizes = " ".join(map(str, DEFAULT_BATCH_SIZES))
    quick_sizes = " ".join(map(str, QUICK_BATCH_SIZES))
    parser.add_argument(
        "--models", type=_model, nargs="+", default=[DEFAULT_MODEL], metavar="MODEL",
        help=f"models whose linear layers are measured (default: {DEFAULT_MODEL}); known: "
        f"{', '.join(MODEL_CONFIGS)} (the part after '/' is enough)",
    )
    parser.add_argument(
        "--tp-sizes", type=positive_int, nargs="+", default=list(DEFAULT_TP_SIZES),
        metavar="TP", help="tensor-parallel sizes: each rank's shard is measured (default: 1)",
    )
    parser.add_argument(
        "--batch-sizes", type=positive_int, nargs="+", metavar="M",
        help=f"batch sizes, tokens per GEMM (default: {batch_sizes}; --quick: {quick_sizes})",
    )
    parser.add_argument(
        "--providers", type=_provider, nargs="+", metavar="NAME",
        help="providers to measure, or `all` (default: "
        f"{', '.join(default_providers(vllm_available=True))}; vLLM's only where vLLM is "
        "available)",
    )
    parser.add_argument(
        "--measure-ms", type=_positive_float, default=DEFAULT_MEASURE_MS, metavar="MS",
        help="about how long each provider's timed CUDA-graph replays last, on average, per "
        f"shape and batch size; the providers' replays are taken in turns, {MIN_BENCH_ITERS} "
        f"to {MAX_BENCH_ITERS} of each (default: {DEFAULT_MEASURE_MS:g})",
    )
    parser.add_argument(
        "--rotate-weights", action="store_true",
        help="give each provider copies of the weight, one a call in turn, whose int8 bytes "
        f"exceed {ROTATION_L2_MULTIPLE}x the L2 (at most {MAX_WEIGHT_COPIES}): every call reads "
        "its weight from DRAM, as in a model's forward pass (default: one weight, which may stay "
        "in the L2 between calls, as vLLM's benchmarks time it)",
    )
    parser.add_argument(
        "--out", type=results_path, metavar="FILE",
        help="write the results to FILE.json (everything) or FILE.csv (one row per "
        "shape x batch size x provider)",
    )
    parser.add_argument(
        "--plot-dir", metavar="DIR",
        help="write a TFLOP/s plot per shape to DIR/bench_int8_res_n{N}_k{K}.png (needs "
        "matplotlib)",
    )
    parser.add_argument(
        "--vllm-lib", metavar="PATH",
        help="vLLM's compiled ops library, for the vllm-* providers (default: "
        f"${VLLM_LIB_ENV}, else an installed vllm package)",
    )
    parser.add_argument(
        "--dry-run", action="store_true",
        help="print the plan (shapes x batch sizes x providers) and exit, without a GPU",
    )
    parser.add_argument(
        "--quick", action="store_true",
        help=f"a smoke run: the first shape only, batch sizes {quick_sizes}, the default "
        "providers (explicit --batch-sizes / --providers still apply)",
    )


# ---------------------------------------------------------------------------------------
# The plan


@dataclass(frozen=True)
class PlannedShape:
    """One (K, N) GEMM shape and the model layers that have it (measured once)."""

    k: int
    n: int
    users: tuple[LinearShape, ...]

    def header(self) -> str:
        first = self.users[0]
        model = first.model if first.tp == 1 else f"{first.model} (TP {first.tp})"
        return f"{model}, N={self.n} K={self.k}, BF16 vs INT8 GEMMs TFLOP/s:"

    def users_text(self) -> str:
        return "; ".join(user.label() for user in self.users)

    def plot_name(self) -> str:
        return f"bench_int8_res_n{self.n}_k{self.k}.png"


@dataclass(frozen=True)
class GemmPlan:
    shapes: tuple[PlannedShape, ...]
    batch_sizes: tuple[int, ...]
    providers: tuple[str, ...]

    @property
    def measurements(self) -> int:
        return len(self.shapes) * len(self.batch_sizes) * len(self.providers)


def plan_shapes(models: Sequence[str], tp_sizes: Sequence[int]) -> list[PlannedShape]:
    """Every distinct (K, N) of the models' layers at the TP sizes, in order; raises
    ValueError where a TP size does not divide a layer."""
    users: dict[tuple[int, int], list[LinearShape]] = {}
    for model in models:
        for tp in tp_sizes:
            for shape in linear_layers(model, tp):
                users.setdefault((shape.k, shape.n), []).append(shape)
    return [PlannedShape(k, n, tuple(u)) for (k, n), u in users.items()]


def plan_gemm(args: argparse.Namespace, vllm_available: bool) -> GemmPlan:
    shapes = plan_shapes(args.models, args.tp_sizes)
    if args.quick:
        shapes = shapes[:1]
    batch_sizes = args.batch_sizes or (QUICK_BATCH_SIZES if args.quick else DEFAULT_BATCH_SIZES)
    if args.providers is None:
        providers = default_providers(vllm_available)
    elif "all" in args.providers:
        providers = list(PROVIDER_CFGS)
    else:
        providers = [name for name in PROVIDER_CFGS if name in args.providers]
    return GemmPlan(tuple(shapes), tuple(dict.fromkeys(batch_sizes)), tuple(providers))


def copies_past_l2(bytes_per_copy: int, l2_bytes: int) -> int:
    """How many copies of `bytes_per_copy` bytes a timed call rotates through so that it reads
    them from DRAM: enough that together they exceed ROTATION_L2_MULTIPLE times the L2, at most
    MAX_WEIGHT_COPIES."""
    return max(1, min(MAX_WEIGHT_COPIES, math.ceil(ROTATION_L2_MULTIPLE * l2_bytes / bytes_per_copy)))


def weight_copies(n: int, k: int, l2_bytes: int) -> int:
    """How many copies of an (N, K) int8 weight a provider cycles through with --rotate-weights."""
    return copies_past_l2(n * k, l2_bytes)


def _l2_bytes() -> int:
    return torch.cuda.get_device_properties(DEVICE).L2_cache_size


def _weights_line(rotate: bool) -> str:
    if rotate:
        return (f"weights: rotated, copies whose int8 bytes exceed {ROTATION_L2_MULTIPLE}x the L2 "
                f"(at most {MAX_WEIGHT_COPIES}), one a call in turn: every call reads its weight from DRAM")
    return ("weights: one, reused by every call (vLLM's benchmarks' way; one that fits the L2 may "
            "be read from it); --rotate-weights reads them from DRAM")


def _plot_line(plot_dir: str) -> str:
    line = f"plots: {plot_dir}/bench_int8_res_n{{N}}_k{{K}}.png"
    if importlib.util.find_spec("matplotlib") is None:
        line += " (not made here: plots need matplotlib (pip install matplotlib))"
    return line


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def print_plan(args: argparse.Namespace, plan: GemmPlan, source: VllmSource) -> None:
    print(
        f"gemm suite: {_count(len(plan.shapes), 'shape')} x "
        f"{_count(len(plan.batch_sizes), 'batch size')} x "
        f"{_count(len(plan.providers), 'provider')} = {_count(plan.measurements, 'measurement')}"
    )
    print(
        "ceilings: device-to-device copy of 1 GiB, empty kernel, cuBLAS BF16 and our INT8 "
        "GEMM at 8192x8192x8192"
    )
    print(f"providers: {', '.join(plan.providers)}")
    print(describe_vllm_source(source))
    print(
        f"timing: CUDA-graph replays, the providers' in turns, about {args.measure_ms:g} ms "
        f"per provider and measurement ({MIN_BENCH_ITERS} to {MAX_BENCH_ITERS} replays of each); "
        "median and 20th/80th percentiles"
    )
    print(_weights_line(args.rotate_weights))
    if args.out:
        print(f"results: {args.out}")
    if args.plot_dir:
        print(_plot_line(args.plot_dir))
    print(f"batch sizes (M): {' '.join(map(str, plan.batch_sizes))}")
    print("shapes:")
    for shape in plan.shapes:
        print(f"  N={shape.n} K={shape.k}: {shape.users_text()}")


# ---------------------------------------------------------------------------------------
# Measuring


def _measurement(
    check: str,
    *,
    timing=None,
    flops: int = 0,
    max_err_rel: float | None = None,
    note: str | None = None,
) -> dict:
    tflops = flops / (timing.median_ms * 1e-3) / 1e12 if timing else None
    return records.provider_record(check, timing, note, {"tflops": tflops, "max_err_rel": max_err_rel})


def iterations_for(one_call_ms: float, measure_ms: float) -> tuple[int, int]:
    """(warm-up calls, timed replays) for a call of about `one_call_ms`: warm-up of about
    WARMUP_MS, replays (each at least MIN_REPLAY_MS long) filling about `measure_ms`."""
    warmup = max(1, min(MAX_WARMUP_ITERS, math.ceil(WARMUP_MS / max(one_call_ms, 1e-6))))
    return warmup, rounds_for([one_call_ms], measure_ms)


def rounds_for(one_call_ms: Sequence[float], measure_ms: float) -> int:
    """Rounds of replays in turns (one replay of each provider a round) for providers whose
    calls take about `one_call_ms`: about `measure_ms` of replays per provider on average."""
    replays_ms = sum(max(t, MIN_REPLAY_MS) for t in one_call_ms)
    rounds = math.ceil(len(one_call_ms) * measure_ms / max(replays_ms, 1e-6))
    return max(MIN_BENCH_ITERS, min(MAX_BENCH_ITERS, rounds))


@dataclass
class _Prepared:
    """A provider that built, ran and matched its reference: ready to be timed."""

    runner: Callable[[], object]  # one call (with rotated weights: on the next copy)
    one_call_ms: float
    max_err_rel: float | None


def _prepare_provider(name, a, weights, vllm) -> _Prepared | dict:
    """Builds, runs and checks one provider on each of `weights` (the first one's output is
    checked): a _Prepared to time, or its final record (not timed: unavailable, failed or
    mismatching)."""
    max_err = None
    try:
        runner = build_runner(name, a, weights[0], OUT_DTYPE, vllm=vllm)
        out = runner()
        check, max_err, detail = check_output(runner, out)
        del out
        if check == MISMATCH:
            return _measurement(check, max_err_rel=max_err, note=detail)
        if len(weights) > 1:
            runner = calls_in_turn([runner, *(build_runner(name, a, w, OUT_DTYPE, vllm=vllm) for w in weights[1:])])
        estimate = time_events(runner, warmup_iters=1, bench_iters=3, calls_per_sample=1)
    except ProviderUnavailable as exc:
        return _measurement(UNAVAILABLE, note=str(exc))
    except Exception as exc:  # one provider failing must not lose the others' results
        return _measurement(ERROR, max_err_rel=max_err, note=exception_summary(exc))
    return _Prepared(runner, estimate.median_ms, max_err)


def _time_alone(prepared: _Prepared, flops: int, measure_ms: float) -> dict:
    try:
        warmup, bench = iterations_for(prepared.one_call_ms, measure_ms)
        timing = time_graph_replay(prepared.runner, warmup_iters=warmup, bench_iters=bench)
    except Exception as exc:
        return _measurement(ERROR, max_err_rel=prepared.max_err_rel, note=exception_summary(exc))
    return _measurement(OK, timing=timing, flops=flops, max_err_rel=prepared.max_err_rel)


def _time_in_turns(prepared: dict[str, _Prepared], flops: int, measure_ms: float) -> dict[str, dict]:
    """Times the providers' graph replays in turns, so that a drift of the clocks during the
    measurement moves them all alike; where that fails, each alone."""
    ready = list(prepared.values())
    try:
        timings = time_graph_replays_in_turns(
            [p.runner for p in ready],
            warmup_iters=[iterations_for(p.one_call_ms, measure_ms)[0] for p in ready],
            bench_iters=rounds_for([p.one_call_ms for p in ready], measure_ms),
        )
    except Exception:  # one provider failing in the graphs must not lose the others' results
        torch.cuda.synchronize()
        return {name: _time_alone(p, flops, measure_ms) for name, p in prepared.items()}
    return {
        name: _measurement(OK, timing=timing, flops=flops, max_err_rel=p.max_err_rel)
        for (name, p), timing in zip(prepared.items(), timings)
    }


def measure_shape_batch(shape: PlannedShape, m: int, weights: Sequence[torch.Tensor], providers, vllm, args):
    """One shape and batch size: every provider on a random activation and `weights` (N, K)
    (more than one: the providers rotate through them, see --rotate-weights)."""
    a = torch.randn(m, shape.k, dtype=OUT_DTYPE, device=DEVICE)
    flops = 2 * m * shape.n * shape.k
    checked = {name: _prepare_provider(name, a, weights, vllm) for name in providers}
    prepared = {name: p for name, p in checked.items() if isinstance(p, _Prepared)}
    timed = _time_in_turns(prepared, flops, args.measure_ms) if prepared else {}
    measurements = {name: timed.get(name, checked[name]) for name in providers}
    first = shape.users[0]
    config = {
        "model": first.model,
        "tp": first.tp,
        "layer": first.layer,
        "m": m,
        "n": shape.n,
        "k": shape.k,
        "flops": flops,
        "shape_users": shape.users_text(),
    }
    if args.rotate_weights:  # absent otherwise, so that results compare with earlier runs'
        config["weight_copies"] = len(weights)
    return {"config": config, "providers": measurements}


# ---------------------------------------------------------------------------------------
# Reporting


def _cell(measurement: dict) -> str:
    if measurement["tflops"] is None:
        return {MISMATCH: "mismatch", UNAVAILABLE: "n/a", ERROR: "error"}.get(
            measurement["check"], "-"
        )
    mark = EVENTS_MARK if measurement["timing"] == "events" else ""
    tflops = measurement["tflops"]
    return f"{tflops:.1f}{mark}" if tflops >= 1 else f"{tflops:.3f}{mark}"


def format_shape_table(results: list[dict], providers: Sequence[str]) -> str:
    """Providers down, batch sizes across, median TFLOP/s in the cells; `results` are one
    shape's, in batch-size order."""
    headers = ["provider \\ M", *(str(r["config"]["m"]) for r in results)]
    rows = [[name, *(_cell(r["providers"][name]) for r in results)] for name in providers]
    return format_table(headers, rows, left_columns=1)


# Batch sizes up to this are decode: a call's time should be the time to read its weight once.
DECODE_MAX_M = 16


def format_weight_read_table(results: list[dict], providers: Sequence[str], n: int, k: int,
                             copy_gbps: float) -> str | None:
    """The decode batch sizes (M <= DECODE_MAX_M) of one shape's `results`: for each provider
    with an 8-bit weight, the time to read that weight (N x K bytes) once at the copy bandwidth
    as a % of its median time; its heading says that time. None where there is nothing to show."""
    decode = [r for r in results if r["config"]["m"] <= DECODE_MAX_M]
    names = [name for name in providers if PROVIDER_CFGS[name]["dtype"] in ("int8", "fp8")]
    if not decode or not names or copy_gbps <= 0:
        return None
    read_ms = n * k / (copy_gbps * 1e9) * 1e3

    def cell(measurement: dict) -> str:
        if measurement["median_ms"] is None:
            return _cell(measurement)
        return f"{100 * read_ms / measurement['median_ms']:.1f}%"

    heading = (f"M <= {DECODE_MAX_M}: reading the 8-bit weight ({n * k / 1e6:.1f} MB) once at copy bandwidth "
               f"({copy_gbps:.0f} GB/s) takes {read_ms * 1e3:.2f} us; that time as a % of each median:")
    headers = ["provider \\ M", *(str(r["config"]["m"]) for r in decode)]
    rows = [[name, *(cell(r["providers"][name]) for r in decode)] for name in names]
    return heading + "\n" + format_table(headers, rows, left_columns=1)


def _ceilings_line(ceilings, matrix: dict, matrix_errors: dict) -> str:
    parts = [
        f"copy {ceilings.copy_gbps:.0f} GB/s",
        f"empty kernel {ceilings.empty_kernel_median_us:.2f} us",
    ]
    for key, title in (("bf16_matmul", "cuBLAS BF16"), ("int8_matmul", "our INT8")):
        if key in matrix:
            c = matrix[key]
            parts.append(f"{title} {c.m}^3 {c.tflops:.1f} TFLOP/s")
        else:
            parts.append(f"{title}: {matrix_errors.get(key, 'not measured')}")
    return "ceilings: " + "; ".join(parts)


def write_plots(plot_dir: str, plan: GemmPlan, results: list[dict]) -> list[Path] | None:
    """One PNG per shape (TFLOP/s against batch size, a line per provider); None, after
    saying so in one line, where matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plots need matplotlib (pip install matplotlib)")
        return None
    directory = Path(plot_dir)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    per_shape = len(plan.batch_sizes)
    for i, shape in enumerate(plan.shapes):
        rows = results[i * per_shape:(i + 1) * per_shape]
        fig, ax = plt.subplots(figsize=(9, 5.5))
        for name in plan.providers:
            points = [
                (r["config"]["m"], r["providers"][name]["tflops"])
                for r in rows
                if r["providers"][name]["tflops"] is not None
            ]
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker="o", label=name)
        ax.set_xscale("log", base=2)
        ax.set_xticks(plan.batch_sizes, [str(m) for m in plan.batch_sizes])
        ax.minorticks_off()
        ax.set_xlabel("batch size M (tokens)")
        ax.set_ylabel("TFLOP/s (median)")
        ax.set_title(shape.header().rstrip(":"), fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = directory / shape.plot_name()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def _flat_matrix_ceilings(matrix: dict) -> dict:
    """The matrix rates under the default suite's flat keys (matrix_size, bf16_tflops,
    int8_tops), so its summary reads this report's ceilings as its own."""
    flat = {}
    if "bf16_matmul" in matrix:
        flat["matrix_size"] = matrix["bf16_matmul"].m
        flat["bf16_tflops"] = matrix["bf16_matmul"].tflops
    if "int8_matmul" in matrix:
        flat["matrix_size"] = matrix["int8_matmul"].m
        flat["int8_tops"] = matrix["int8_matmul"].tflops
    return flat


def _benchmark(args: argparse.Namespace, plan: GemmPlan, source: VllmSource) -> int:
    torch.manual_seed(SEED)
    environment = collect_environment()
    vllm = VllmGemmOps(source)
    environment["vllm"] = records.vllm_status(source, vllm)
    ceilings = measure_ceilings(warmup_iters=10, bench_iters=100)
    matrix, matrix_errors = {}, {}
    for key, measure in (("bf16_matmul", measure_bf16_matmul), ("int8_matmul", measure_int8_matmul)):
        try:
            matrix[key] = measure()
        except Exception as exc:  # e.g. our INT8 GEMM on a GPU it was not built for
            matrix_errors[key] = exception_summary(exc)
        torch.cuda.empty_cache()

    records.print_header(environment, _ceilings_line(ceilings, matrix, matrix_errors), vllm)

    results = []
    configs = [(shape, m) for shape in plan.shapes for m in plan.batch_sizes]
    weights: tuple[PlannedShape, list[torch.Tensor]] | None = None
    interrupted = False
    try:
        with tqdm(configs, desc=NAME, unit="GEMM", file=sys.stderr, disable=None) as bar:
            for shape, m in bar:
                bar.set_postfix_str(f"N={shape.n} K={shape.k} M={m}")
                if weights is None or weights[0] is not shape:
                    weights = None
                    torch.cuda.empty_cache()
                    copies = weight_copies(shape.n, shape.k, _l2_bytes()) if args.rotate_weights else 1
                    weights = (shape, [torch.randn(shape.n, shape.k, dtype=OUT_DTYPE, device=DEVICE)
                                       for _ in range(copies)])
                results.append(measure_shape_batch(shape, m, weights[1], plan.providers, vllm, args))
    except KeyboardInterrupt:
        interrupted = True
        print(f"\ninterrupted: keeping the {len(results)} measurements taken", file=sys.stderr)
    del weights
    torch.cuda.empty_cache()

    print()
    print(
        "TFLOP/s: 2*M*N*K / median time per call (CUDA-graph replays); M = batch size (tokens); "
        "out = a (M, K) @ w.t(), w (N, K)"
    )
    print(_weights_line(args.rotate_weights))
    per_shape = len(plan.batch_sizes)
    for i, shape in enumerate(plan.shapes):
        print()
        print(shape.header())
        if len(shape.users) > 1:
            print(f"(the same shape: {shape.users_text()})")
        shape_results = results[i * per_shape:(i + 1) * per_shape]
        print(format_shape_table(shape_results, plan.providers))
        weight_read = format_weight_read_table(shape_results, plan.providers, shape.n, shape.k, ceilings.copy_gbps)
        if weight_read:
            print()
            print(weight_read)
    print()
    notes = records.distinct_notes(results, vllm.describe(), "measurement")
    mismatch = "output differs from the exact result of its operands"
    for line in records.legend(results, mismatch) + notes:
        print(line)

    if args.plot_dir and not interrupted:
        paths = write_plots(args.plot_dir, plan, results)
        if paths:
            print(f"plots written to {args.plot_dir} ({len(paths)} files)")

    ours = [name for name in plan.providers if PROVIDER_CFGS[name]["backend"] == "qbench"]
    report = {
        "suite": NAME,
        "environment": environment,
        "settings": {
            "measure_ms": args.measure_ms,
            "seed": SEED,
            "input": "a = randn(M, K), w = randn(N, K), bfloat16; out = a @ w.t()",
            "rotate_weights": args.rotate_weights,
            "out_dtype": str(OUT_DTYPE).removeprefix("torch."),
            "models": list(args.models),
            "tp_sizes": list(args.tp_sizes),
            "batch_sizes": list(plan.batch_sizes),
            "providers": {name: PROVIDER_CFGS[name] for name in plan.providers},
            "ours": ours,
            "float_rtol": FLOAT_RTOL,
        },
        "ceilings": {
            **ceilings.as_dict(),
            **_flat_matrix_ceilings(matrix),
            **{key: c.as_dict() for key, c in matrix.items()},
            **{f"{key}_error": text for key, text in matrix_errors.items()},
        },
        "notes": vllm.notes + notes,
        "results": results,
        "interrupted": interrupted,
    }
    return records.finish(args.out, report, interrupted, ours)


def run(args: argparse.Namespace) -> int:
    source = locate_vllm(args.vllm_lib)
    try:
        plan = plan_gemm(args, vllm_available=source.kind is not None)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print_plan(args, plan, source)
        return 0
    if gpu_missing("--dry-run prints the plan without one"):
        return 2
    return _benchmark(args, plan, source)
