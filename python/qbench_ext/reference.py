"""The specification of qbench_ext's quantizers, in plain PyTorch.

Per row, per group of `group_size` consecutive elements, in fp32:

    amax = max(max(|x|), eps)
    FP8:  s = amax / 448;  with use_ue8m0, s = the smallest power of two >= s
          q = e4m3(clamp(x / s, -448, 448))      (round to nearest even)
    INT8: s = amax / 127;  q = clamp(round_half_even(x / s), -128, 127)

Every `/` is a correctly rounded fp32 division (a tensor divided by a tensor: PyTorch's CUDA
`tensor / python_number` multiplies by a reciprocal instead, off by one ulp for some inputs).

Non-finite inputs: a group holding a NaN gets s = NaN, and every element of it quantizes to
NaN (FP8) or 0 (INT8). A group holding +-Inf (and no NaN) gets s = Inf: its finite elements
quantize to 0 and its infinities to NaN (FP8) or 0 (INT8), since Inf / Inf is NaN.

The CUDA kernels (qbench_ext.quant) and the Triton kernels (qbench_ext.triton_ref) are
bit-exact against these functions run on the same GPU. They are also written to compile well
under torch.compile, which the benchmark uses as a peer.
"""

from __future__ import annotations

import torch

from ._group_quant_args import FP8_DTYPE, FP8_MAX, INT8_MAX, GroupQuantPlan, group_quantizers


def ceil_pow2(s: torch.Tensor) -> torch.Tensor:
    """The smallest power of two >= s (fp32, positive), computed exactly on the bits;
    NaN and Inf pass through."""
    bits = s.view(torch.int32)
    exponent = bits & 0x7F800000
    round_up = ((bits & 0x007FFFFF) != 0) & (exponent != 0x7F800000)
    return torch.where(round_up, exponent + 0x00800000, bits).view(torch.float32)


def _group_scales(xg: torch.Tensor, eps: float, qmax: float) -> torch.Tensor:
    amax = xg.abs().amax(dim=-1)
    eps_t = torch.full_like(amax, eps)
    amax = torch.where(amax < eps_t, eps_t, amax)  # NaN stays NaN
    return amax / torch.full_like(amax, qmax)


def _quantize(plan: GroupQuantPlan, q_dtype: torch.dtype, use_ue8m0: bool, eps: float) -> None:
    m, k = plan.x2d.shape
    xg = plan.x2d.float().reshape(m, k // plan.group_size, plan.group_size)
    if q_dtype == FP8_DTYPE:
        s = _group_scales(xg, eps, FP8_MAX)
        if use_ue8m0:
            s = ceil_pow2(s)
        q = (xg / s.unsqueeze(-1)).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)
    else:
        s = _group_scales(xg, eps, INT8_MAX)
        v = xg / s.unsqueeze(-1)
        v = torch.where(torch.isnan(v), torch.zeros_like(v), v)
        q = v.round().clamp(-128, 127).to(torch.int8)
    plan.q2d.copy_(q.reshape(m, k))
    plan.s2d.copy_(s)


per_token_group_quant_fp8, per_token_group_quant_int8 = group_quantizers(_quantize, "Reference", __name__)
