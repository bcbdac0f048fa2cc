"""The specification of qbench_ext's per-token / per-tensor INT8 quantizer, in plain PyTorch.

    q, s, azp = scaled_int8_quant(x, scale=None, azp=None, symmetric=True)

x (..., K) in bf16/fp16/fp32 is read as rows x[m, :] of the (M, K) flattening; all arithmetic
is fp32, every `/` a correctly rounded fp32 division (a tensor divided by a tensor: PyTorch's
CUDA `tensor / python_number` multiplies by a reciprocal instead, off by one ulp for some
inputs), and round() rounds half to even.

Dynamic, symmetric (scale=None, symmetric=True); returns s (M, 1) fp32 and azp None:

    amax = max(|x[m, :]|)                      (0 for K = 0)
    s[m] = max(amax, 127 * 2^-126) / 127       (s >= 2^-126: an all-zero row gets q = 0)
    q    = clamp(round(x / s[m]), -128, 127)   (a NaN quotient quantizes to 0)

Dynamic, asymmetric (scale=None, symmetric=False); returns s (M, 1) fp32, azp (M, 1) int32:

    lo = min(min(x[m, :]), 0),  hi = max(max(x[m, :]), 0)
    s[m]   = max(hi - lo, 255 * 2^-126) / 255
    azp[m] = round(-128 - lo / s[m])           (in [-128, 127]; a NaN becomes 0)
    q      = clamp(round(x / s[m]) + azp[m], -128, 127)

This is vLLM's dynamic_scaled_int8_azp_quant (s = (max - min) / 255, azp = round(-128 -
min / s), q = round(x / s) + azp) on the range widened to include 0, as PyTorch's min-max
observers do. For rows holding both signs, the usual case, the two are the same; for rows
of one sign the widening keeps azp within int8 and x / s within +-256, where vLLM's formula
would overflow int32 for narrow ranges far from 0, and gives zero-range rows (all zeros,
or constant) a finite scale.

Static (scale given: an fp32 tensor of one element; with symmetric=False also azp, an int32
tensor of one element); returns the given scale and azp:

    q = clamp(round(x / scale) + azp, -128, 127)   (azp = 0 when symmetric; a NaN quotient
                                                    counts as 0; the sum is exact)

Non-finite inputs: a row holding a NaN gets s = NaN (and azp = 0), and all of its elements
quantize to 0 (symmetric) or to azp = 0 (asymmetric). A symmetric row holding +-Inf (and no
NaN) gets s = Inf: finite elements quantize to 0, infinities (Inf / Inf = NaN) to 0 too.
An asymmetric row with hi = Inf (and finite lo) gets s = Inf, azp = -128 and q = -128; one
with lo = -Inf gets s = Inf and azp = 0 (-128 - (-Inf / Inf) is NaN), so q = 0.

The CUDA kernel (qbench_ext.int8_quant) is bit-exact against these functions run on the same
GPU (NaN scales compare equal whatever their payload).
"""

from __future__ import annotations

import torch

from ._int8_quant_args import Int8QuantPlan, int8_quantizer

FLT_MIN = 2.0**-126
SYM_FLOOR = 127.0 * FLT_MIN  # exact in fp32
ASYM_FLOOR = 255.0 * FLT_MIN


def _full(like: torch.Tensor, value: float) -> torch.Tensor:
    return torch.full_like(like, value)


def _nan_to_zero(v: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isnan(v), torch.zeros_like(v), v)


def _row_scales_symmetric(x2d: torch.Tensor) -> torch.Tensor:
    m, k = x2d.shape
    if k == 0:
        amax = torch.zeros(m, 1, dtype=torch.float32, device=x2d.device)
    else:
        amax = x2d.abs().amax(dim=1, keepdim=True)
    floor = _full(amax, SYM_FLOOR)
    amax = torch.where(amax < floor, floor, amax)  # NaN stays NaN
    return amax / _full(amax, 127.0)


def _row_scales_asymmetric(x2d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    m, k = x2d.shape
    if k == 0:
        hi = torch.zeros(m, 1, dtype=torch.float32, device=x2d.device)
        lo = torch.zeros_like(hi)
    else:
        hi = x2d.amax(dim=1, keepdim=True)  # NaN propagates
        lo = x2d.amin(dim=1, keepdim=True)
    zero = torch.zeros_like(hi)
    hi = torch.where(hi < zero, zero, hi)  # NaN stays NaN
    lo = torch.where(lo > zero, zero, lo)
    span = hi - lo
    floor = _full(span, ASYM_FLOOR)
    span = torch.where(span < floor, floor, span)
    s = span / _full(span, 255.0)
    zp = _full(s, -128.0) - lo / s
    azp = _nan_to_zero(zp.round()).to(torch.int32)
    return s, azp


def _quantize(x2d: torch.Tensor, s: torch.Tensor, azp: torch.Tensor | None) -> torch.Tensor:
    """clamp(round(x / s) + azp, -128, 127), exact for any int32 azp (float64 holds the sum
    exactly whenever it can land in [-128, 127])."""
    r = _nan_to_zero(x2d / s.expand_as(x2d)).round().double()
    if azp is not None:
        r = r + azp.double()
    return r.clamp(-128, 127).to(torch.int8)


def _quantize_plan(plan: Int8QuantPlan) -> None:
    xf = plan.x2d.float()
    m, k = xf.shape
    if plan.dynamic:
        if plan.symmetric:
            s = _row_scales_symmetric(xf)
            zp = None
        else:
            s, zp = _row_scales_asymmetric(xf)
            plan.azp.copy_(zp)
        plan.scale.copy_(s)
        if m * k > 0:
            plan.q2d.copy_(_quantize(xf, s, zp))
    elif m * k > 0:
        s = plan.scale.reshape(1, 1).float()
        zp = None if plan.azp is None else plan.azp.reshape(1, 1)
        plan.q2d.copy_(_quantize(xf, s, zp))


scaled_int8_quant = int8_quantizer(_quantize_plan, "Reference", __name__)
