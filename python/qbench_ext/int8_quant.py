"""Per-token (dynamic) and per-tensor (static) INT8 quantization of activations, on our CUDA
kernel. The interface is vLLM's `scaled_int8_quant`."""

from __future__ import annotations

import torch

from ._int8_quant_args import plan_scaled_int8_quant
from ._ops import ops, require_cuda


def scaled_int8_quant(
    x: torch.Tensor,
    scale: torch.Tensor | None = None,
    azp: torch.Tensor | None = None,
    symmetric: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Quantizes x (..., K) to INT8. Returns (q, scale, azp).

    scale=None: dynamic, one scale per token (row of the (M, K) flattening): s (M, 1) fp32,
    and with symmetric=False also zero points azp (M, 1) int32 (else None). x ~= s * q, or
    s * (q - azp).
    scale given (fp32 tensor of one element on x's device): static per-tensor quantization
    with that scale and, with symmetric=False, the given zero point azp (int32, one element);
    scale and azp are returned as given.

    q has x's shape, int8, contiguous. Rows of x may be strided (last dim contiguous). See
    qbench_ext.reference_int8_quant for the exact specification; this is bit-exact with it.
    """
    plan = plan_scaled_int8_quant(x, scale, azp, symmetric)
    require_cuda(x, "x")
    m, k = plan.x2d.shape
    if plan.dynamic:
        if m > 0:  # K == 0 still writes the scales (and zero points) of the empty rows
            ops.dynamic_scaled_int8_quant(plan.q2d, plan.x2d, plan.scale, plan.azp)
    elif m * k > 0:
        ops.static_scaled_int8_quant(plan.q2d, plan.x2d, plan.scale, plan.azp)
    return plan.q, plan.scale, plan.azp
