"""The GPU's ceilings, measured at the start of every run so that results are read against
figures from the same GPU, clocks and software: the device-to-device copy bandwidth (what a
memory-bound kernel can at best reach) and the launch floor of an empty kernel (what the
smallest problems cannot go below)."""

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
