"""qbench-ext: 8-bit quantization kernels for LLM inference, and the benchmark that measures them.

    q, s = qbench_ext.per_token_group_quant_fp8(x, 128)
    q, s = qbench_ext.per_token_group_quant_int8(x, 128)

`qbench_ext.reference` holds the pure-PyTorch specification, `qbench_ext.triton_ref` our
Triton kernels with the same signatures, and `python -m qbench_ext.bench` the benchmarks.
"""

from ._ops import build_info
from .int8_quant import scaled_int8_quant
from .quant import per_token_group_quant_fp8, per_token_group_quant_int8

__version__ = "0.1.0"

__all__ = [
    "build_info",
    "per_token_group_quant_fp8",
    "per_token_group_quant_int8",
    "scaled_int8_quant",
    "__version__",
]
