"""qbench-ext: 8-bit quantization kernels for LLM inference, and the benchmark that measures them.

    q, s = qbench_ext.per_token_group_quant_fp8(x, 128)
    q, s = qbench_ext.per_token_group_quant_int8(x, 128)
    q, s, azp = qbench_ext.scaled_int8_quant(x)
    out = qbench_ext.int8_scaled_mm(q, w_q.t(), s, w_s, out_dtype=torch.bfloat16)

`qbench_ext.reference` holds the pure-PyTorch specification, `qbench_ext.triton_ref` our
Triton kernels with the same signatures, and `python -m qbench_ext.bench` the benchmarks.
"""

from ._ops import build_info
from .gemm import int8_scaled_mm
from .int8_quant import scaled_int8_quant
from .quant import per_token_group_quant_fp8, per_token_group_quant_int8

__version__ = "0.1.0"

__all__ = [
    "build_info",
    "int8_scaled_mm",
    "per_token_group_quant_fp8",
    "per_token_group_quant_int8",
    "scaled_int8_quant",
    "__version__",
]
