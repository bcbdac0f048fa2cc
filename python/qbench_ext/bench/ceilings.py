"""The GPU's ceilings, measured at the start of every run so that results are read against
figures from the same GPU, clocks and software: the device-to-device copy bandwidth (what a
memory-bound kernel can at best reach) and the launch floor of an empty kernel (what the
smallest problems cannot go below).

The matrix ceilings (`measure_matrix_ceilings`) are what compute-bound GEMMs reach on this
GPU: cuBLAS's BF16 GEMM and our INT8 GEMM on a large square problem (8192^3), in TFLOP/s."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from .._ops import ops
from .timing import time_events, time_graph_replay

COPY_BYTES = 1 << 30  # large enough that caches and launch cost do not show
_COPY_SAMPLES = 20
_COPY_WARMUP = 3


@dataclass(frozen=True)
class Ceilings:
    copy_bytes: int  # bytes of one copy's source (it reads and writes this many)
    copy_median_ms: float
    copy_gbps: float  # (read + write) bytes / median time
    empty_kernel_median_us: float
    empty_kernel_p20_us: float
    empty_kernel_p80_us: float
    empty_kernel_timing: str

    def as_dict(self) -> dict:
        return asdict(self)


def measure_ceilings(*, warmup_iters: int, bench_iters: int) -> Ceilings:
    """Measures both ceilings on the current CUDA device; the empty kernel is timed like the
    providers (`warmup_iters`, `bench_iters`)."""
    src = torch.randint(0, 256, (COPY_BYTES,), dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    copy = time_events(
        lambda: dst.copy_(src),
        warmup_iters=_COPY_WARMUP,
        bench_iters=_COPY_SAMPLES,
        calls_per_sample=1,
    )
    del src, dst
    torch.cuda.empty_cache()

    like = torch.empty(1, device="cuda")
    empty = time_graph_replay(
        lambda: ops.empty_kernel(like), warmup_iters=warmup_iters, bench_iters=bench_iters
    )
    return Ceilings(
        copy_bytes=COPY_BYTES,
        copy_median_ms=copy.median_ms,
        copy_gbps=2 * COPY_BYTES / (copy.median_ms * 1e-3) / 1e9,
        empty_kernel_median_us=empty.median_ms * 1e3,
        empty_kernel_p20_us=empty.p20_ms * 1e3,
        empty_kernel_p80_us=empty.p80_ms * 1e3,
        empty_kernel_timing=empty.method,
    )


# ---------------------------------------------------------------------------------------
# Matrix ceilings

MATRIX_CEILING_SIZE = 8192
_MATRIX_WARMUP = 5
_MATRIX_SAMPLES = 20
# Quantized randn has a standard deviation of about 127 / 4 codes (its scale is amax / 127
# and amax is about 4 sigma): the operands' bits toggle as in the benchmarks' GEMMs.
_INT8_SIGMA = 32.0


@dataclass(frozen=True)
class MatrixCeiling:
    """One GEMM out (M, N) = a (M, K) @ w.t() with w (N, K), timed by CUDA-graph replay."""

    name: str  # what ran, e.g. "cuBLAS BF16" or "qbench INT8"
    m: int
    n: int
    k: int
    median_ms: float
    p20_ms: float
    p80_ms: float
    tflops: float  # 2 * M * N * K / median time
    timing: str

    def as_dict(self) -> dict:
        return asdict(self)


def _matrix_ceiling(name: str, fn, size: int, warmup_iters: int, bench_iters: int) -> MatrixCeiling:
    timing = time_graph_replay(fn, warmup_iters=warmup_iters, bench_iters=bench_iters)
    return MatrixCeiling(
        name=name,
        m=size,
        n=size,
        k=size,
        median_ms=timing.median_ms,
        p20_ms=timing.p20_ms,
        p80_ms=timing.p80_ms,
        tflops=2 * size**3 / (timing.median_ms * 1e-3) / 1e12,
        timing=timing.method,
    )


def measure_bf16_matmul(
    size: int = MATRIX_CEILING_SIZE,
    *,
    warmup_iters: int = _MATRIX_WARMUP,
    bench_iters: int = _MATRIX_SAMPLES,
) -> MatrixCeiling:
    """cuBLAS's BF16 GEMM (torch.mm(a, w.t()), randn operands) on a size^3 problem."""
    a = torch.randn(size, size, dtype=torch.bfloat16, device="cuda")
    w = torch.randn(size, size, dtype=torch.bfloat16, device="cuda")
    out = torch.empty(size, size, dtype=torch.bfloat16, device="cuda")
    return _matrix_ceiling(
        "cuBLAS BF16", lambda: torch.mm(a, w.t(), out=out), size, warmup_iters, bench_iters
    )


def measure_int8_matmul(
    size: int = MATRIX_CEILING_SIZE,
    *,
    warmup_iters: int = _MATRIX_WARMUP,
    bench_iters: int = _MATRIX_SAMPLES,
) -> MatrixCeiling:
    """Our INT8 GEMM (qbench_ext.int8_scaled_mm, per-tensor scales, BF16 out) on a size^3
    problem, with operands distributed like quantized randn."""
    from ..gemm import int8_scaled_mm

    def codes() -> torch.Tensor:
        x = torch.randn(size, size, device="cuda") * _INT8_SIGMA
        return x.round_().clamp_(-127, 127).to(torch.int8)

    a, w = codes(), codes()
    scale = torch.full((1, 1), 1e-3, dtype=torch.float32, device="cuda")
    out = torch.empty(size, size, dtype=torch.bfloat16, device="cuda")
    return _matrix_ceiling(
        "qbench INT8",
        lambda: int8_scaled_mm(a, w.t(), scale, scale, out_dtype=torch.bfloat16, out=out),
        size,
        warmup_iters,
        bench_iters,
    )


def measure_matrix_ceilings(size: int = MATRIX_CEILING_SIZE) -> dict[str, MatrixCeiling]:
    """{"bf16_matmul": cuBLAS BF16, "int8_matmul": our INT8}, a size^3 GEMM each."""
    ceilings = {"bf16_matmul": measure_bf16_matmul(size)}
    torch.cuda.empty_cache()
    ceilings["int8_matmul"] = measure_int8_matmul(size)
    torch.cuda.empty_cache()
    return ceilings
