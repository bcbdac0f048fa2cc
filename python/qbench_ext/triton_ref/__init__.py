"""Our Triton kernels: the same signatures and results as qbench_ext's CUDA ops."""

from .per_token_group_quant import per_token_group_quant_fp8, per_token_group_quant_int8

__all__ = ["per_token_group_quant_fp8", "per_token_group_quant_int8"]
