"""Our Triton kernels: the same signatures and results as qbench_ext's CUDA ops."""

from .int8_scaled_mm import int8_scaled_mm
from .per_token_group_quant import per_token_group_quant_fp8, per_token_group_quant_int8
from .scaled_int8_quant import scaled_int8_quant

__all__ = ["int8_scaled_mm", "per_token_group_quant_fp8", "per_token_group_quant_int8", "scaled_int8_quant"]
