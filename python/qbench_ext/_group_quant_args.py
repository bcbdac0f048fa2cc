"""Argument checks and output allocation shared by every per-token-group quantizer (CUDA,
Triton and the PyTorch reference), so that all three accept and reject the same inputs and
lay their outputs out the same way."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

SUPPORTED_GROUP_SIZES = (16, 32, 64, 128, 256)
INPUT_DTYPES = (torch.bfloat16, torch.float16, torch.float32)
FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = 448.0
INT8_MAX = 127.0
# Scales stay >= 1e-20 / 448, where the kernels' FMA-corrected division is provably exact
# (see csrc/quantization/per_token_group_quant.cu).
MIN_EPS = 1e-20
MAX_EPS = 1e20


@dataclass(frozen=True)
class GroupQuantPlan:
    x2d: torch.Tensor  # (M, K) view of x, rows possibly strided
    q: torch.Tensor  # (..., K), contiguous
    s: torch.Tensor  # (..., K / G), row- or column-major
    q2d: torch.Tensor
    s2d: torch.Tensor
    group_size: int


def check_activation(x: object) -> None:
    """x is a bf16/fp16/fp32 tensor (..., K) whose last dim is contiguous."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in INPUT_DTYPES:
        raise TypeError(f"x must be bfloat16, float16 or float32, got {x.dtype}")
    if x.dim() < 1:
        raise ValueError("x must have at least one dimension (..., K)")
    if x.shape[-1] > 1 and x.stride(-1) != 1:
        raise ValueError(f"x's last dim must be contiguous (stride 1), got strides {x.stride()}")


def _check_x(x: object, group_size: object, eps: object) -> None:
    check_activation(x)
    if isinstance(group_size, bool) or not isinstance(group_size, int):
        raise TypeError(f"group_size must be an int, got {type(group_size).__name__}")
    if group_size not in SUPPORTED_GROUP_SIZES:
        raise ValueError(f"group_size must be one of {SUPPORTED_GROUP_SIZES}, got {group_size}")
    if x.shape[-1] % group_size != 0:
        raise ValueError(
            f"x.shape[-1] ({x.shape[-1]}) must be divisible by group_size ({group_size})"
        )
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise TypeError(f"eps must be a float, got {type(eps).__name__}")
    if not (MIN_EPS <= eps <= MAX_EPS):
        raise ValueError(f"eps must be in [{MIN_EPS:g}, {MAX_EPS:g}], got {eps}")


def rows_view(x: torch.Tensor) -> torch.Tensor:
    """x as (M, K); leading dims must flatten to rows of one stride (no copy is made)."""
    k = x.shape[-1]
    try:
        return x.view(math.prod(x.shape[:-1]), k)
    except RuntimeError:
        raise ValueError(
            f"x's leading dims must flatten to evenly strided rows (a view), got shape "
            f"{tuple(x.shape)} with strides {x.stride()}; call .contiguous() first"
        ) from None


def plan_group_quant(
    x: torch.Tensor,
    group_size: int,
    q_dtype: torch.dtype,
    *,
    column_major_scales: bool,
    tma_aligned_scales: bool,
    eps: float,
    out_q: torch.Tensor | None,
) -> GroupQuantPlan:
    """Checks the arguments and allocates (or checks) the outputs."""
    _check_x(x, group_size, eps)
    if tma_aligned_scales and not column_major_scales:
        raise ValueError("tma_aligned_scales=True needs column_major_scales=True")
    x2d = rows_view(x)
    m, k = x2d.shape
    if x2d.shape[0] > 1 and x2d.shape[1] > 0 and x2d.stride(0) < k:
        raise ValueError(f"x's rows overlap (row stride {x2d.stride(0)} < K = {k})")
    ng = k // group_size
    if out_q is None:
        q = torch.empty(x.shape, dtype=q_dtype, device=x.device)
    else:
        if not isinstance(out_q, torch.Tensor):
            raise TypeError(f"out_q must be a torch.Tensor, got {type(out_q).__name__}")
        if out_q.dtype != q_dtype:
            raise TypeError(f"out_q must have dtype {q_dtype}, got {out_q.dtype}")
        if out_q.shape != x.shape:
            raise ValueError(f"out_q must have x's shape {tuple(x.shape)}, got {tuple(out_q.shape)}")
        if out_q.device != x.device:
            raise ValueError(f"out_q must be on x's device {x.device}, got {out_q.device}")
        if not out_q.is_contiguous():
            raise ValueError(f"out_q must be contiguous, got strides {out_q.stride()}")
        q = out_q
    lead = tuple(x.shape[:-1])
    if column_major_scales:
        ld = (m + 3) // 4 * 4 if tma_aligned_scales else m
        storage = torch.empty(ng * ld, dtype=torch.float32, device=x.device)
        s2d = storage.as_strided((m, ng), (1, ld))
        s = s2d.view(*lead, ng) if lead else s2d.view(ng)
    else:
        s = torch.empty(*lead, ng, dtype=torch.float32, device=x.device)
        s2d = s.view(m, ng)
    return GroupQuantPlan(x2d=x2d, q=q, s=s, q2d=q.view(m, k), s2d=s2d, group_size=group_size)


def group_quantizers(
    quantize: Callable[[GroupQuantPlan, torch.dtype, bool, float], None], implementation: str, module: str
):
    """The public pair (per_token_group_quant_fp8, per_token_group_quant_int8) of one
    implementation: `quantize(plan, q_dtype, use_ue8m0, eps)` fills plan.q2d and plan.s2d.
    The signatures, the argument checks and the output allocation are written once, here."""

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
        plan = plan_group_quant(
            x,
            group_size,
            FP8_DTYPE,
            column_major_scales=column_major_scales,
            tma_aligned_scales=tma_aligned_scales,
            eps=eps,
            out_q=out_q,
        )
        quantize(plan, FP8_DTYPE, use_ue8m0, eps)
        return plan.q, plan.s

    def per_token_group_quant_int8(
        x: torch.Tensor, group_size: int, *, eps: float = 1e-10, out_q: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        plan = plan_group_quant(
            x, group_size, torch.int8, column_major_scales=False, tma_aligned_scales=False, eps=eps, out_q=out_q
        )
        quantize(plan, torch.int8, False, eps)
        return plan.q, plan.s

    per_token_group_quant_fp8.__doc__ = (
        f"{implementation}: quantizes x (..., K) to FP8 e4m3 in groups of `group_size` along K.\n\n"
        "Returns (q, s): q of x's shape in float8_e4m3fn, s fp32 of shape (..., K / group_size),\n"
        "row-major, column-major (column_major_scales) or with the column stride padded to a\n"
        "multiple of 4 (tma_aligned_scales); use_ue8m0 rounds scales up to powers of two.\n"
        "qbench_ext.reference states the exact specification."
    )
    per_token_group_quant_int8.__doc__ = (
        f"{implementation}: quantizes x (..., K) to INT8 in groups of `group_size` along K\n"
        "(row-major fp32 scales). qbench_ext.reference states the exact specification."
    )
    for fn in (per_token_group_quant_fp8, per_token_group_quant_int8):
        fn.__module__ = module
        fn.__qualname__ = fn.__name__
    return per_token_group_quant_fp8, per_token_group_quant_int8
