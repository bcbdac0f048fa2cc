"""Per-token-group quantization of activations, on our CUDA kernels."""

from __future__ import annotations

import torch

from ._group_quant_args import FP8_DTYPE, plan_group_quant
from ._ops import ops, require_cuda


def _run(x, group_size, q_dtype, column_major_scales, use_ue8m0, tma_aligned_scales, eps, out_q):
    plan = plan_group_quant(
        x,
        group_size,
        q_dtype,
        column_major_scales=column_major_scales,
        tma_aligned_scales=tma_aligned_scales,
        eps=eps,
        out_q=out_q,
    )
    require_cuda(x, "x")
    if plan.x2d.numel() > 0:
        ops.per_token_group_quant(plan.x2d, plan.q2d, plan.s2d, group_size, float(eps), use_ue8m0)
    return plan.q, plan.s


def per_token_group_quant_fp8(
    x: torch.Tensor,
    group_size: int,
    *,
    column_major_scales: bool = False,
    use_ue8m0: bool = False,
    tma_aligned_scales: bool = False,
    eps: float = 1e-10,
    out_q: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantizes x (..., K) to FP8 e4m3 in groups of `group_size` along K.

    Returns (q, s): q of x's shape in float8_e4m3fn, s fp32 of shape (..., K / group_size),
    with x ~= q * s per group. See qbench_ext.reference for the exact specification.
    """
    return _run(x, group_size, FP8_DTYPE, column_major_scales, use_ue8m0, tma_aligned_scales, eps, out_q)


def per_token_group_quant_int8(
    x: torch.Tensor,
    group_size: int,
    *,
    eps: float = 1e-10,
    out_q: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantizes x (..., K) to INT8 in groups of `group_size` along K (row-major scales)."""
    return _run(x, group_size, torch.int8, False, False, False, eps, out_q)
