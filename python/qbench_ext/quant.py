"""Per-token-group quantization of activations, on our CUDA kernels."""

from __future__ import annotations

import torch

from ._group_quant_args import GroupQuantPlan, group_quantizers
from ._ops import ops, require_cuda


def _quantize(plan: GroupQuantPlan, q_dtype: torch.dtype, use_ue8m0: bool, eps: float) -> None:
    require_cuda(plan.x2d, "x")
    if plan.x2d.numel() > 0:
        ops.per_token_group_quant(plan.x2d, plan.q2d, plan.s2d, plan.group_size, float(eps), use_ue8m0)


per_token_group_quant_fp8, per_token_group_quant_int8 = group_quantizers(_quantize, "CUDA", __name__)
