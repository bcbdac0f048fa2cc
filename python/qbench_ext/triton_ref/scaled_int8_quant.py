"""Per-token (dynamic) and per-tensor (static) INT8 quantization in Triton, bit-exact with
qbench_ext.reference_int8_quant (the interface of qbench_ext.int8_quant.scaled_int8_quant).

One program per row. Rows of up to _MAX_ONE_PASS elements are loaded once and kept in
registers between the reduction and the quantization; longer rows are read twice. As in the
CUDA kernel, the row maxima are taken on IEEE bit patterns compared as signed integers (max of
x and max of -x, each floored at +0: a NaN of either sign reaches one of them and
propagates), and the divisions are correctly rounded (`div_rn`: Triton's `/` is approximate
for fp32).
"""

from __future__ import annotations

import triton
import triton.language as tl
from triton.language.extra import libdevice

from .._int8_quant_args import Int8QuantPlan, int8_quantizer
from .._ops import require_cuda
from ..reference_int8_quant import ASYM_FLOOR, SYM_FLOOR

_MAX_ONE_PASS = 16384  # elements of a row kept in registers
_LONG_ROW_BLOCK = 4096


@triton.jit
def _quantize(x, s, azp, HAS_AZP: tl.constexpr):
    """clamp(round(x / s) + azp, -128, 127) with NaN quotients counting as 0; exact for any
    int32 azp (|round(x / s)| capped at 2^40 and the sum formed in 64 bits)."""
    v = tl.math.div_rn(x, s)
    v = tl.where(v != v, 0.0, libdevice.rint(v))
    if HAS_AZP:
        v = tl.minimum(tl.maximum(v, -1099511627776.0), 1099511627776.0)
        r = v.to(tl.int64) + azp.to(tl.int64)
        r = tl.minimum(tl.maximum(r, -128), 127)
        return r.to(tl.int8)
    else:
        v = tl.minimum(tl.maximum(v, -128.0), 127.0)
        return v.to(tl.int8)


@triton.jit
def _row_maxima(x):
    """max(max(x), +0) and max(-min(x), +0) as int32 bit patterns (sign and magnitude split
    on the bits, so that a NaN of either sign is kept)."""
    bits = x.to(tl.int32, bitcast=True)
    mag = bits & 0x7FFFFFFF
    negative = bits < 0
    pos = tl.max(tl.where(negative, 0, mag), axis=0)
    neg = tl.max(tl.where(negative, mag, 0), axis=0)
    return pos, neg


@triton.jit
def _scaled_int8_quant_kernel(
    x_ptr,
    q_ptr,
    scale_ptr,  # dynamic: (M,) output; static: the per-tensor scale
    azp_ptr,  # dynamic asymmetric: (M,) output; static: the zero point; else unused
    K,
    x_row_stride,
    q_row_stride,
    sym_floor,
    asym_floor,
    DYNAMIC: tl.constexpr,
    HAS_AZP: tl.constexpr,
    BLOCK: tl.constexpr,
    ONE_PASS: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * x_row_stride
    q_row = q_ptr + row * q_row_stride
    cols = tl.arange(0, BLOCK)

    if ONE_PASS:
        x = tl.load(x_row + cols, mask=cols < K, other=0.0).to(tl.float32)
    if DYNAMIC:
        if ONE_PASS:
            pos, neg = _row_maxima(x)
        else:
            pos = tl.zeros((), tl.int32)
            neg = tl.zeros((), tl.int32)
            for start in range(0, K, BLOCK):
                xb = tl.load(x_row + start + cols, mask=start + cols < K, other=0.0).to(tl.float32)
                p, n = _row_maxima(xb)
                pos = tl.maximum(pos, p)
                neg = tl.maximum(neg, n)
        pos_max = pos.to(tl.float32, bitcast=True)
        neg_max = neg.to(tl.float32, bitcast=True)
        if HAS_AZP:
            span = pos_max + neg_max
            span = tl.where(span < asym_floor, asym_floor, span)  # keeps NaN
            s = tl.math.div_rn(span, tl.full(span.shape, 255.0, tl.float32))
            zp = -128.0 + tl.math.div_rn(neg_max, s)
            azp = tl.where(zp != zp, 0.0, libdevice.rint(zp)).to(tl.int32)
            tl.store(azp_ptr + row, azp)
        else:
            amax = tl.maximum(pos, neg).to(tl.float32, bitcast=True)
            amax = tl.where(amax < sym_floor, sym_floor, amax)
            s = tl.math.div_rn(amax, tl.full(amax.shape, 127.0, tl.float32))
            azp = 0
        tl.store(scale_ptr + row, s)
    else:
        s = tl.load(scale_ptr)
        if HAS_AZP:
            azp = tl.load(azp_ptr)
        else:
            azp = 0

    if ONE_PASS:
        tl.store(q_row + cols, _quantize(x, s, azp, HAS_AZP), mask=cols < K)
    else:
        for start in range(0, K, BLOCK):
            xb = tl.load(x_row + start + cols, mask=start + cols < K, other=0.0).to(tl.float32)
            tl.store(q_row + start + cols, _quantize(xb, s, azp, HAS_AZP), mask=start + cols < K)


def _quantize_plan(plan: Int8QuantPlan) -> None:
    require_cuda(plan.x2d, "x")
    m, k = plan.x2d.shape
    if m == 0 or (k == 0 and not plan.dynamic):
        return
    one_pass = k <= _MAX_ONE_PASS
    block = max(16, triton.next_power_of_2(k)) if one_pass else _LONG_ROW_BLOCK
    num_warps = 4 if block <= 2048 else (8 if block <= 8192 else 16)
    has_azp = plan.azp is not None
    _scaled_int8_quant_kernel[(m,)](
        plan.x2d,
        plan.q2d,
        plan.scale,
        plan.azp if has_azp else plan.scale,
        k,
        plan.x2d.stride(0),
        plan.q2d.stride(0),
        SYM_FLOOR,
        ASYM_FLOOR,
        DYNAMIC=plan.dynamic,
        HAS_AZP=has_azp,
        BLOCK=block,
        ONE_PASS=one_pass,
        num_warps=num_warps,
    )


scaled_int8_quant = int8_quantizer(_quantize_plan, "Triton", __name__)
