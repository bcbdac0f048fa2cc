"""Argument checks and output allocation shared by the INT8 per-token / per-tensor quantizers
(CUDA and the PyTorch reference), so that both accept and reject the same inputs and return
the same layouts."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._group_quant_args import check_activation, rows_view



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
    q = torch.empty(x.shape, dtype=torch.int8, device=x.device)
    q2d = q.view(m, k)
    if scale is None:
        s = torch.empty((m, 1), dtype=torch.float32, device=x.device)
        azp_out = None if symmetric else torch.empty((m, 1), dtype=torch.int32, device=x.device)
        return Int8QuantPlan(x2d, q, q2d, s, azp_out, dynamic=True, symmetric=symmetric)
    return Int8QuantPlan(x2d, q, q2d, scale, azp, dynamic=False, symmetric=symmetric)
