"""Per-token-group FP8/INT8 quantization in Triton, bit-exact with qbench_ext.reference.

Each program quantizes a block of whole groups. As in the CUDA kernel, |x| is reduced as
int32 bit patterns (monotone for non-negative floats, NaN on top, so NaN propagates) and the
divisions are correctly rounded (`div_rn`: Triton's `/` is approximate for fp32).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton.language.extra import libdevice

from .._group_quant_args import FP8_DTYPE, FP8_MAX, INT8_MAX, GroupQuantPlan, group_quantizers
from .._ops import require_cuda

# Elements each program handles: enough bytes in flight per program for large tensors, while
# tiny tensors still spread over several programs.
_ELEMS_PER_PROGRAM = 4096


@triton.jit
def _per_token_group_quant_kernel(
    x_ptr,
    q_ptr,
    s_ptr,
    num_groups,
    groups_per_row,
    x_row_stride,
    q_row_stride,
    s_row_stride,
    s_col_stride,
    eps,
    qmax,
    GROUP_SIZE: tl.constexpr,
    GROUPS_PER_PROGRAM: tl.constexpr,
    IS_FP8: tl.constexpr,
    USE_UE8M0: tl.constexpr,
):
    group = tl.program_id(0).to(tl.int64) * GROUPS_PER_PROGRAM + tl.arange(0, GROUPS_PER_PROGRAM)
    in_range = group < num_groups
    # Groups are numbered along rows (streaming through x and q) for every scale layout.
    row = group // groups_per_row
    col_group = group % groups_per_row
    cols = col_group[:, None] * GROUP_SIZE + tl.arange(0, GROUP_SIZE)[None, :]
    x = tl.load(x_ptr + row[:, None] * x_row_stride + cols, mask=in_range[:, None], other=0.0)
    x = x.to(tl.float32)

    amax = tl.max(tl.abs(x).to(tl.int32, bitcast=True), axis=1).to(tl.float32, bitcast=True)
    amax = tl.where(amax < eps, eps, amax)
    scale = tl.math.div_rn(amax, tl.full(amax.shape, qmax, tl.float32))
    if USE_UE8M0:
        bits = scale.to(tl.int32, bitcast=True)
        exponent = bits & 0x7F800000
        round_up = ((bits & 0x007FFFFF) != 0) & (exponent != 0x7F800000)
        scale = tl.where(round_up, exponent + 0x00800000, bits).to(tl.float32, bitcast=True)

    v = tl.math.div_rn(x, scale[:, None])
    if IS_FP8:
        # Comparisons are false for NaN, so NaN reaches the conversion and stays NaN.
        v = tl.where(v > qmax, qmax, tl.where(v < -qmax, -qmax, v))
        q = v.to(tl.float8e4nv)
    else:
        v = tl.where(v != v, 0.0, libdevice.rint(v))
        q = tl.where(v > 127.0, 127.0, tl.where(v < -128.0, -128.0, v)).to(tl.int8)
    tl.store(q_ptr + row[:, None] * q_row_stride + cols, q, mask=in_range[:, None])
    tl.store(s_ptr + row * s_row_stride + col_group * s_col_stride, scale, mask=in_range)


def _quantize(plan: GroupQuantPlan, q_dtype: torch.dtype, use_ue8m0: bool, eps: float) -> None:
    require_cuda(plan.x2d, "x")
    m, k = plan.x2d.shape
    group_size = plan.group_size
    num_groups = m * (k // group_size)
    if num_groups == 0:
        return
    groups_per_program = max(1, _ELEMS_PER_PROGRAM // group_size)
    is_fp8 = q_dtype == FP8_DTYPE
    _per_token_group_quant_kernel[(triton.cdiv(num_groups, groups_per_program),)](
        plan.x2d,
        plan.q2d,
        plan.s2d,
        num_groups,
        k // group_size,
        plan.x2d.stride(0),
        plan.q2d.stride(0),
        plan.s2d.stride(0),
        plan.s2d.stride(1),
        float(eps),
        FP8_MAX if is_fp8 else INT8_MAX,
        GROUP_SIZE=group_size,
        GROUPS_PER_PROGRAM=groups_per_program,
        IS_FP8=is_fp8,
        USE_UE8M0=use_ue8m0,
        num_warps=4,
    )


per_token_group_quant_fp8, per_token_group_quant_int8 = group_quantizers(_quantize, "Triton", __name__)
