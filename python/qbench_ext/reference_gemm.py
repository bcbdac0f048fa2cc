"""Pure-PyTorch reference of the INT8 scaled GEMM: the exact specification of
qbench_ext.gemm.int8_scaled_mm.

    out = (scale_a * a) @ (scale_b * b) + bias

a int8 (..., K), b int8 (K, N), scale_a fp32 of 1 or M elements (per tensor / per token, M =
a.numel() // K), scale_b fp32 of 1 or N elements (per tensor / per channel), bias (N,) or None.

The integer product is exact (int64 on the CPU; float64 on a GPU, where integer matmul is not
supported: float64 sums of int8 products are exact while |acc| < 2^53, i.e. for any K below
2^39). Scales and bias are then applied in float64 and the result is cast to out_dtype once.
The CUDA kernel applies them in float32 (and converts the int32 accumulator to float32), so it
may differ from this reference by one unit in the last place of out_dtype near rounding ties.
"""

from __future__ import annotations

import torch


def int8_scaled_mm(
    a: torch.Tensor,
    b: torch.Tensor,
    scale_a: torch.Tensor,
    scale_b: torch.Tensor,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Exact reference; returns a tensor of shape a.shape[:-1] + (N,) in out_dtype."""
    return int8_scaled_mm_exact(a, b, scale_a, scale_b, bias).to(out_dtype)


def int8_scaled_mm_exact(
    a: torch.Tensor,
    b: torch.Tensor,
    scale_a: torch.Tensor,
    scale_b: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """The same computation, returned in float64 before the final rounding (for ulp checks)."""
    if a.dtype != torch.int8 or b.dtype != torch.int8:
        raise TypeError(f"a and b must be int8, got {a.dtype} and {b.dtype}")
    if b.dim() != 2 or a.dim() < 1 or a.shape[-1] != b.shape[0]:
        raise ValueError(f"shapes {tuple(a.shape)} and {tuple(b.shape)} do not multiply")
    k, n = b.shape
    lead = a.shape[:-1]
    a2 = a.reshape(-1, k)
    m = a2.shape[0]
    if a.device.type == "cpu":
        acc = (a2.to(torch.int64) @ b.to(torch.int64)).to(torch.float64)
    else:
        acc = a2.to(torch.float64) @ b.to(torch.float64)
    sa = scale_a.reshape(-1).to(torch.float64)
    sb = scale_b.reshape(-1).to(torch.float64)
    if sa.numel() not in (1, m):
        raise ValueError(f"scale_a must have 1 or {m} elements, got {sa.numel()}")
    if sb.numel() not in (1, n):
        raise ValueError(f"scale_b must have 1 or {n} elements, got {sb.numel()}")
    out = acc * sa.reshape(-1, 1) * sb.reshape(1, -1)
    if bias is not None:
        out = out + bias.reshape(1, n).to(torch.float64)
    return out.reshape(*lead, n)


def ulp(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Spacing of `dtype`'s representable numbers at |x| (float64), for bfloat16 / float16:
    2^(floor(log2|x|) - mantissa bits), floored at the subnormal spacing."""
    mantissa_bits = {torch.bfloat16: 7, torch.float16: 10}[dtype]
    min_exp = {torch.bfloat16: -126, torch.float16: -14}[dtype]
    x = x.to(torch.float64).abs()
    _, e = torch.frexp(x)  # x = m * 2^e with m in [0.5, 1)
    e = torch.where(x == 0, torch.full_like(e, min_exp), e - 1).clamp(min=min_exp)
    return torch.ldexp(torch.ones_like(x), e - mantissa_bits)


def compare_to_exact(out: torch.Tensor, exact: torch.Tensor, bias: torch.Tensor | None = None) -> dict:
    """Compares a kernel's output with the exact float64 result: `ref` is exact rounded to
    out.dtype; returns the number of NaNs in out, of elements further than one ulp (of ref)
    from ref, and the fraction of elements that differ from ref at all.

    With a bias, the fp32 epilogue rounds the scaled product before adding the bias; where the
    two nearly cancel, those few fp32 roundings of |bias| (2^-21 |bias| bounds them, with the
    int32-to-fp32 conversion of the accumulator) can exceed one ulp of the small result, so
    that much more is allowed."""
    ref = exact.to(out.dtype)
    o, r = out.to(torch.float64), ref.to(torch.float64)
    same = o == r
    tolerance = ulp(ref, out.dtype)
    if bias is not None:
        tolerance = tolerance + 2.0**-21 * bias.to(torch.float64).abs().reshape(1, -1)
    within = same | ((o - r).abs() <= tolerance)
    n = max(out.numel(), 1)
    return {
        "nan": int(out.isnan().sum()),
        "beyond_one_ulp": int((~within).sum()),
        "frac_differ": float((~same).sum()) / n,
    }
