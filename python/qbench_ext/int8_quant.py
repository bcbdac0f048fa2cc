"""Per-token (dynamic) and per-tensor (static) INT8 quantization of activations, on our CUDA
kernel. The interface is vLLM's `scaled_int8_quant`."""

from __future__ import annotations

from ._int8_quant_args import Int8QuantPlan, int8_quantizer
from ._ops import ops, require_cuda


def _quantize(plan: Int8QuantPlan) -> None:
    require_cuda(plan.x2d, "x")
    m, k = plan.x2d.shape
    if plan.dynamic:
        if m > 0:  # K == 0 still writes the scales (and zero points) of the empty rows
            ops.dynamic_scaled_int8_quant(plan.q2d, plan.x2d, plan.scale, plan.azp)
    elif m * k > 0:
        ops.static_scaled_int8_quant(plan.q2d, plan.x2d, plan.scale, plan.azp)


scaled_int8_quant = int8_quantizer(_quantize, "CUDA", __name__)
