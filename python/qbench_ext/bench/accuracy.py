"""`accuracy`: how much each quantization scheme loses, on activations that look like an LLM's.

For each group-quantization variant (FP8 G=64/128 with and without UE8M0 scales, INT8
G=64/128, and for contrast INT8 per token and per tensor) the dequantised q * s is compared
with x; for each INT8 GEMM configuration (weight per tensor / per channel x activation per
tensor / per token, and unquantised BF16 as the floor) the GEMM's bf16 output is compared
with the float64 product of the same bf16 inputs. Activations are drawn three ways:

    gaussian    N(0, 1)
    student_t3  Student-t with 3 degrees of freedom (heavy tails: rare large values)
    outliers    N(0, 1) with 4 channels (columns) scaled by 50 to 100, as the few outlier
                features of large transformers

Weights are N(0, 0.02^2). Metrics, on float64: relative Frobenius error ||approx - ref|| /
||ref||, SNR in dB 10 log10(||ref||^2 / ||approx - ref||^2), and the largest absolute error.

--device cpu (the default without a GPU) runs the pure-PyTorch references: qbench_ext.reference
and reference_int8_quant for the quantizers, and reference_gemm's arithmetic for the GEMM
(the integer product accumulated exactly in float64, scales in float64, one rounding to bf16;
the same as reference_gemm.int8_scaled_mm, whose int64 CPU matmul is too slow at these
sizes). --device cuda runs our CUDA kernels, qbench_ext.int8_scaled_mm included.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .cli import gpu_missing
from .environment import collect_environment
from .results import results_format, write_results
from .table import format_table

NAME = "accuracy"
HELP = "quantization error of each scheme (group quant, INT8 GEMM) on LLM-like activations"

DEFAULT_SIZE = (256, 4096, 4096)  # tokens M, hidden K, output features N
QUICK_SIZE = (32, 512, 512)
OUTLIER_CHANNELS = 4
OUTLIER_SCALE = (50.0, 100.0)
WEIGHT_STD = 0.02
SEED = 0
DISTRIBUTIONS = {
    "gaussian": "N(0, 1)",
    "student_t3": "Student-t, 3 degrees of freedom",
    "outliers": f"N(0, 1), {OUTLIER_CHANNELS} channels scaled by "
    f"{OUTLIER_SCALE[0]:g}-{OUTLIER_SCALE[1]:g}",
}


# ---------------------------------------------------------------------------------------
# Metrics


def error_metrics(approx: torch.Tensor, ref: torch.Tensor) -> dict:
    """Relative Frobenius error, SNR (dB; inf for no error) and max absolute error of
    `approx` against `ref`, computed in float64."""
    approx, ref = approx.double(), ref.double()
    err = approx - ref
    err_sq, ref_sq = float((err * err).sum()), float((ref * ref).sum())
    return {
        "rel_fro": math.sqrt(err_sq / ref_sq) if ref_sq else math.inf,
        "snr_db": 10 * math.log10(ref_sq / err_sq) if err_sq else math.inf,
        "max_abs": float(err.abs().max()) if err.numel() else 0.0,
    }


# ---------------------------------------------------------------------------------------
# Inputs


def activations(kind: str, m: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """(m, k) bf16 activations of one of DISTRIBUTIONS, on the CPU."""
    x = torch.randn(m, k, generator=generator, dtype=torch.float64)
    if kind == "student_t3":
        # t = Z / sqrt(V / 3), V ~ chi-square(3) = the sum of three squared normals
        chi2 = (torch.randn(3, m, k, generator=generator, dtype=torch.float64) ** 2).sum(0)
        x = x / torch.sqrt(chi2 / 3)
    elif kind == "outliers":
        channels = torch.randperm(k, generator=generator)[:OUTLIER_CHANNELS]
        low, high = OUTLIER_SCALE
        uniform = torch.rand(len(channels), generator=generator, dtype=torch.float64)
        scales = low + (high - low) * uniform
        x[:, channels] *= scales
    elif kind != "gaussian":
        raise ValueError(f"unknown distribution {kind!r}")
    return x.to(torch.bfloat16)


# ---------------------------------------------------------------------------------------
# Quantizers: each returns the dequantised tensor (float32)


@dataclass(frozen=True)
class QuantVariant:
    name: str
    dtype: str  # "fp8" or "int8"
    granularity: str  # "group", "token" or "tensor"
    group_size: int | None = None
    use_ue8m0: bool = False


QUANT_VARIANTS = (
    QuantVariant("fp8 G=64", "fp8", "group", 64),
    QuantVariant("fp8 G=64 ue8m0", "fp8", "group", 64, True),
    QuantVariant("fp8 G=128", "fp8", "group", 128),
    QuantVariant("fp8 G=128 ue8m0", "fp8", "group", 128, True),
    QuantVariant("int8 G=64", "int8", "group", 64),
    QuantVariant("int8 G=128", "int8", "group", 128),
    QuantVariant("int8 per token", "int8", "token"),
    QuantVariant("int8 per tensor", "int8", "tensor"),
)


def _modules(device: str):
    """(group quantizers, per-token/tensor INT8 quantizer): our CUDA ops or the references."""
    if device == "cuda":
        import qbench_ext

        return qbench_ext, qbench_ext.scaled_int8_quant
    from qbench_ext import reference, reference_int8_quant

    return reference, reference_int8_quant.scaled_int8_quant


def int8_quantize(x: torch.Tensor, granularity: str, device: str):
    """(q, s) of x (M, K) quantized to INT8 per row ('token', s of shape (M, 1)) or with one
    scale ('tensor': amax / 127, s of one element)."""
    _, scaled_int8_quant = _modules(device)
    if granularity == "token":
        q, s, _ = scaled_int8_quant(x)
        return q, s
    amax = x.abs().amax().float().reshape(1)
    scale = torch.maximum(amax, torch.full_like(amax, 1e-10)) / torch.full_like(amax, 127.0)
    q, s, _ = scaled_int8_quant(x, scale)
    return q, s


def dequantize(x: torch.Tensor, variant: QuantVariant, device: str) -> torch.Tensor:
    """q * s of the variant applied to x (M, K), as float32 of x's shape."""
    m, k = x.shape
    if variant.granularity == "group":
        groups, _ = _modules(device)
        quantize = getattr(groups, f"per_token_group_quant_{variant.dtype}")
        options = {"use_ue8m0": variant.use_ue8m0} if variant.dtype == "fp8" else {}
        q, s = quantize(x, variant.group_size, **options)
        g = variant.group_size
        return (q.float().reshape(m, k // g, g) * s.float().reshape(m, k // g, 1)).reshape(m, k)
    q, s = int8_quantize(x, variant.granularity, device)
    return q.float() * s.float().reshape(-1, 1)


# ---------------------------------------------------------------------------------------
# GEMMs: each returns the bf16 output of x (M, K) @ w (N, K)^T


def _int8_gemm(weight: str, activation: str) -> Callable:
    def gemm(x: torch.Tensor, w: torch.Tensor, device: str) -> torch.Tensor:
        w_q, w_s = int8_quantize(w, "token" if weight == "channel" else "tensor", device)
        a_q, a_s = int8_quantize(x, activation, device)
        if device == "cuda":
            import qbench_ext

            return qbench_ext.int8_scaled_mm(
                a_q, w_q.t(), a_s, w_s.reshape(-1), out_dtype=torch.bfloat16
            )
        # reference_gemm's arithmetic: int8 products summed exactly (|sum| < 2^53), scales in
        # float64, one rounding to bf16.
        acc = a_q.double() @ w_q.double().t()
        return (acc * a_s.double().reshape(-1, 1) * w_s.double().reshape(1, -1)).to(torch.bfloat16)

    return gemm


GEMM_VARIANTS = {
    "bf16 (no quantization)": lambda x, w, device: x @ w.t(),
    "int8 W per tensor, A per tensor": _int8_gemm("tensor", "tensor"),
    "int8 W per tensor, A per token": _int8_gemm("tensor", "token"),
    "int8 W per channel, A per tensor": _int8_gemm("channel", "tensor"),
    "int8 W per channel, A per token": _int8_gemm("channel", "token"),
}


# ---------------------------------------------------------------------------------------
# Command line


def parse_size(text: str) -> tuple[int, int, int]:
    parts = text.lower().split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) != 3 or min(size) <= 0 or size[1] % 128 or size[2] % 16:
        raise argparse.ArgumentTypeError(
            "size must be MxKxN with K a multiple of 128 and N of 16 (e.g. 256x4096x4096), "
            f"got {text!r}"
        )
    return size


def _results_path(text: str) -> str:
    try:
        if results_format(text) != ".json":
            raise ValueError(f"accuracy results are written as JSON, got {text!r}")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    m, k, n = DEFAULT_SIZE
    parser.add_argument(
        "--device", choices=("cuda", "cpu"),
        help="cuda: our kernels; cpu: the pure-PyTorch references (default: cuda where there "
        "is a GPU, else cpu)",
    )
    parser.add_argument(
        "--size", type=parse_size, metavar="MxKxN",
        help=f"tokens x hidden x output features (default: {m}x{k}x{n})",
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="a small problem, {}x{}x{} (unless --size)".format(*QUICK_SIZE),
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"(default: {SEED})")
    parser.add_argument("--out", type=_results_path, metavar="FILE.json", help="write the results")


def _table(results: list[dict], kind: str) -> str:
    rows: dict[str, dict] = {}
    for result in results:
        config = result["config"]
        if config["kind"] == kind:
            rows.setdefault(config["variant"], {})[config["distribution"]] = result["metrics"]
    headers = ["variant"]
    for dist in DISTRIBUTIONS:
        headers += [f"{dist} rel err", "SNR dB", "max |err|"]
    cells = []
    for variant, by_dist in rows.items():
        row = [variant]
        for dist in DISTRIBUTIONS:
            metrics = by_dist.get(dist)
            if metrics is None:
                row += ["-", "-", "-"]
                continue
            row += [
                f"{100 * metrics['rel_fro']:.3f}%",
                f"{metrics['snr_db']:.1f}",
                f"{metrics['max_abs']:.3g}",
            ]
        cells.append(row)
    return format_table(headers, cells, left_columns=1)


def _finite(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def measure(size: tuple[int, int, int], device: str, seed: int) -> list[dict]:
    m, k, n = size
    generator = torch.Generator().manual_seed(seed)
    w = (torch.randn(n, k, generator=generator, dtype=torch.float64) * WEIGHT_STD)
    w = w.to(torch.bfloat16).to(device)
    results = []
    for dist in DISTRIBUTIONS:
        x = activations(dist, m, k, generator).to(device)
        for variant in QUANT_VARIANTS:
            results.append(
                {
                    "config": {
                        "kind": "group_quant", "variant": variant.name, "distribution": dist,
                    },
                    "metrics": error_metrics(dequantize(x, variant, device), x),
                }
            )
        ref = x.double() @ w.double().t()
        for name, gemm in GEMM_VARIANTS.items():
            results.append(
                {
                    "config": {"kind": "gemm", "variant": name, "distribution": dist},
                    "metrics": error_metrics(gemm(x, w, device), ref),
                }
            )
    return results


def run(args: argparse.Namespace) -> int:
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and gpu_missing("--device cpu runs the references"):
        return 2
    size = args.size or (QUICK_SIZE if args.quick else DEFAULT_SIZE)
    m, k, n = size
    kernels = "our CUDA kernels" if device == "cuda" else "the pure-PyTorch references"
    print(f"accuracy: M={m} tokens, K={k}, N={n}, on {device} ({kernels}), seed {args.seed}")
    print("activations: " + "; ".join(f"{name}: {text}" for name, text in DISTRIBUTIONS.items()))
    print(f"weights: N(0, {WEIGHT_STD:g}^2)")
    results = measure(size, device, args.seed)
    print()
    print("group quantization: dequantised q * s against x")
    print(_table(results, "group_quant"))
    print()
    print("GEMM: bf16 output against the float64 product of the bf16 inputs")
    print(_table(results, "gemm"))
    print(
        "rel err: ||approx - ref||_F / ||ref||_F; SNR dB: 10 log10(||ref||^2 / "
        "||approx - ref||^2); max |err|: largest absolute error"
    )
    if args.out:
        for result in results:
            result["metrics"] = {key: _finite(v) for key, v in result["metrics"].items()}
        write_results(
            args.out,
            {
                "suite": NAME,
                "environment": collect_environment(),
                "settings": {
                    "m": m, "k": k, "n": n, "device": device, "seed": args.seed,
                    "distributions": DISTRIBUTIONS, "weights": f"N(0, {WEIGHT_STD:g}^2)",
                },
                "notes": [],
                "results": results,
            },
        )
        print(f"results written to {args.out}")
    return 0
