"""Argument checks and output allocation shared by the INT8 per-token / per-tensor quantizers
(CUDA and the PyTorch reference), so that both accept and reject the same inputs and return
the same layouts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._group_quant_args import check_activation, rows_view
from .gemm import whole_tile_rows



@dataclass(frozen=True)
class Int8QuantPlan:
    x2d: torch.Tensor  # (M, K) view of x, rows possibly strided
    q: torch.Tensor  # x's shape, int8, contiguous
    q2d: torch.Tensor  # (M, K) view of q
    scale: torch.Tensor  # dynamic: new (M, 1) fp32; static: the given scale
    azp: torch.Tensor | None  # dynamic asymmetric: new (M, 1) int32; static: the given azp
    dynamic: bool
    symmetric: bool


def _check_scalar_tensor(t: object, name: str, dtype: torch.dtype, x: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (one {dtype} element) or None, got {type(t).__name__}")
    if t.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {t.dtype}")
    if t.numel() != 1:
        raise ValueError(f"{name} must have exactly one element (per-tensor), got shape {tuple(t.shape)}")
    if t.device != x.device:
        raise ValueError(f"{name} must be on x's device {x.device}, got {t.device}")


def plan_scaled_int8_quant(
    x: torch.Tensor,
    scale: torch.Tensor | None,
    azp: torch.Tensor | None,
    symmetric: bool,
) -> Int8QuantPlan:
    """Checks the arguments of scaled_int8_quant and allocates its outputs."""
    check_activation(x)
    if not isinstance(symmetric, bool):
        raise TypeError(f"symmetric must be a bool, got {type(symmetric).__name__}")
    if x.shape[-1] >= 2**31 - 16:
        raise ValueError(f"x.shape[-1] ({x.shape[-1]}) is too large")
    if scale is not None:
        _check_scalar_tensor(scale, "scale", torch.float32, x)
    if azp is not None:
        _check_scalar_tensor(azp, "azp", torch.int32, x)
    if scale is None and azp is not None:
        raise ValueError(
            "azp can only be given with a static scale; dynamic quantization computes its own "
            "zero points (pass symmetric=False)"
        )
    if scale is not None and symmetric and azp is not None:
        raise ValueError("azp was given with symmetric=True; zero points need symmetric=False")
    if scale is not None and not symmetric and azp is None:
        raise ValueError("static asymmetric quantization (scale given, symmetric=False) needs azp")

    x2d = rows_view(x)
    m, k = x2d.shape
    # q's memory runs on to a multiple of 256 rows: int8_scaled_mm's loads of the last tile can
    # then stay in bounds, which is faster (csrc/gemm/int8_scaled_mm_sm90.cuh,
    # widen_activation_box). Those rows are never written and their products never stored.
    q = torch.empty(whole_tile_rows(m) * k, dtype=torch.int8, device=x.device)[: m * k].view(x.shape)
    q2d = q.view(m, k)
    if scale is None:
        s = torch.empty((m, 1), dtype=torch.float32, device=x.device)
        azp_out = None if symmetric else torch.empty((m, 1), dtype=torch.int32, device=x.device)
        return Int8QuantPlan(x2d, q, q2d, s, azp_out, dynamic=True, symmetric=symmetric)
    return Int8QuantPlan(x2d, q, q2d, scale, azp, dynamic=False, symmetric=symmetric)


def int8_quantizer(quantize: Callable[[Int8QuantPlan], None], implementation: str, module: str):
    """The public scaled_int8_quant of one implementation: `quantize(plan)` fills plan.q2d and,
    when dynamic, plan.scale (and plan.azp). The signature, the argument checks and the
    output allocation are written once, here."""

    def scaled_int8_quant(
        x: torch.Tensor,
        scale: torch.Tensor | None = None,
        azp: torch.Tensor | None = None,
        symmetric: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        plan = plan_scaled_int8_quant(x, scale, azp, symmetric)
        quantize(plan)
        return plan.q, plan.scale, plan.azp

    scaled_int8_quant.__doc__ = (
        f"{implementation}: quantizes x (..., K) to INT8. Returns (q, scale, azp).\n\n"
        "scale=None: dynamic, one scale per token (row of the (M, K) flattening): s (M, 1) fp32,\n"
        "and with symmetric=False also zero points azp (M, 1) int32 (else None). x ~= s * q, or\n"
        "s * (q - azp).\n"
        "scale given (fp32 tensor of one element on x's device): static per-tensor quantization\n"
        "with that scale and, with symmetric=False, the given zero point azp (int32, one element);\n"
        "scale and azp are returned as given.\n\n"
        "q has x's shape, int8, contiguous. Rows of x may be strided (last dim contiguous).\n"
        "qbench_ext.reference_int8_quant states the exact specification."
    )
    scaled_int8_quant.__module__ = module
    scaled_int8_quant.__qualname__ = scaled_int8_quant.__name__
    return scaled_int8_quant
