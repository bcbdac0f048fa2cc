"""INT8 scaled GEMM on our CUTLASS (sm90a) kernels, with vLLM's cutlass_scaled_mm conventions.

    out = int8_scaled_mm(a, b, scale_a, scale_b, out_dtype=torch.bfloat16, bias=None)

computes (scale_a * a) @ (scale_b * b) + bias with int32 accumulation and the scales and bias
applied in float32, rounded once to out_dtype. See qbench_ext.reference_gemm for the exact
specification.

Decode sizes (M <= 16) launch with programmatic dependent launch and start streaming the
weight b before the kernel ahead of them in the stream has completed. Our own ops that let the
next kernel start early (per_token_group_quant_*, scaled_int8_quant, this GEMM) record what
they write, and a b just written by one of them is read only after it completes. A kernel of another library that
triggers its dependents early (PDL) and writes b is not seen: b must not be written by the
kernel launched right before this GEMM in that case.
"""

from __future__ import annotations

import torch

from ._ops import ops, require_cuda

_OUT_DTYPES = (torch.bfloat16, torch.float16)


@torch.library.register_fake("qbench_ext::int8_scaled_mm_config")
def _int8_scaled_mm_config_fake(out, a, b, scale_a, scale_b, bias, config):
    return None


def _is_compiling() -> bool:
    try:
        return torch.compiler.is_compiling()
    except AttributeError:  # pragma: no cover - old torch
        return False


def _check_tensor(x, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")


def _prepare(a, b, scale_a, scale_b, out_dtype, bias, out):
    """Validates the arguments; returns (a2d, b, scale_a, scale_b, bias, out, out2d)."""
    for x, name in ((a, "a"), (b, "b"), (scale_a, "scale_a"), (scale_b, "scale_b")):
        _check_tensor(x, name)
    if bias is not None:
        _check_tensor(bias, "bias")
    if out is not None:
        _check_tensor(out, "out")
    if out_dtype not in _OUT_DTYPES:
        raise TypeError(f"out_dtype must be torch.bfloat16 or torch.float16, got {out_dtype}")
    if a.dtype != torch.int8:
        raise TypeError(f"a must be int8, got {a.dtype}")
    if b.dtype != torch.int8:
        raise TypeError(f"b must be int8, got {b.dtype}")
    if scale_a.dtype != torch.float32:
        raise TypeError(f"scale_a must be float32, got {scale_a.dtype}")
    if scale_b.dtype != torch.float32:
        raise TypeError(f"scale_b must be float32, got {scale_b.dtype}")
    if a.dim() < 2:
        raise ValueError(f"a must have at least 2 dims (..., K), got shape {tuple(a.shape)}")
    if b.dim() != 2:
        raise ValueError(f"b must be 2-D (K, N), got shape {tuple(b.shape)}")
    k, n = b.shape
    if a.shape[-1] != k:
        raise ValueError(f"a's last dim ({a.shape[-1]}) must equal b's first dim K ({k})")
    if k % 16 != 0 or n % 16 != 0:
        raise ValueError(f"K and N must be multiples of 16, got K = {k}, N = {n}")
    lead = tuple(a.shape[:-1])
    m = 1
    for d in lead:
        m *= d
    if a.stride(-1) != 1 and k > 1:
        raise ValueError(f"a must be row-major (a.stride(-1) == 1), got strides {tuple(a.stride())}")
    if b.stride(0) != 1 and k > 0:
        raise ValueError(
            f"b must be column-major (b.stride(0) == 1), e.g. w.t() of a contiguous (N, K) weight; "
            f"got strides {tuple(b.stride())}"
        )
    if k > 0 and (b.stride(1) < k or b.stride(1) % 16 != 0):
        raise ValueError(f"b's column stride must be a multiple of 16 and >= K, got {b.stride(1)}")
    if scale_a.numel() not in (1, m):
        raise ValueError(
            f"scale_a must have 1 (per-tensor) or M = {m} (per-token) elements, got shape {tuple(scale_a.shape)}"
        )
    if scale_b.numel() not in (1, n):
        raise ValueError(
            f"scale_b must have 1 (per-tensor) or N = {n} (per-channel) elements, got shape {tuple(scale_b.shape)}"
        )
    if bias is not None:
        if bias.dtype != out_dtype:
            raise TypeError(f"bias must have out_dtype ({out_dtype}), got {bias.dtype}")
        if tuple(bias.shape) != (n,):
            raise ValueError(f"bias must have shape (N,) = ({n},), got {tuple(bias.shape)}")
    out_shape = (*lead, n)
    if out is not None:
        if out.dtype != out_dtype:
            raise TypeError(f"out must have out_dtype ({out_dtype}), got {out.dtype}")
        if tuple(out.shape) != out_shape:
            raise ValueError(f"out must have shape {out_shape}, got {tuple(out.shape)}")
        if not out.is_contiguous():
            raise ValueError("out must be contiguous")

    require_cuda(a, "a")
    for x, name in ((b, "b"), (scale_a, "scale_a"), (scale_b, "scale_b"), (bias, "bias"), (out, "out")):
        if x is not None and x.device != a.device:
            raise ValueError(f"{name} must be on a's device ({a.device}), got {x.device}")

    a2 = a.reshape(m, k)
    if m > 1 and k > 0 and (a2.stride(0) < k or a2.stride(0) % 16 != 0):
        raise ValueError(f"a's row stride must be a multiple of 16 and >= K, got {a2.stride(0)}")
    if out is None:
        out = torch.empty(out_shape, dtype=out_dtype, device=a.device)
    out2 = out.view(m, n)
    if not _is_compiling() and m > 0 and k > 0:
        for x, name in ((a2, "a"), (b, "b"), (out2, "out")):
            if x.data_ptr() % 16 != 0:
                raise ValueError(f"{name} must be 16-byte aligned (its data pointer is not)")
    scale_a = scale_a.reshape(-1)
    scale_b = scale_b.reshape(-1)
    if not scale_a.is_contiguous():
        scale_a = scale_a.contiguous()
    if not scale_b.is_contiguous():
        scale_b = scale_b.contiguous()
    if bias is not None and not bias.is_contiguous():
        bias = bias.contiguous()
    return a2, b, scale_a, scale_b, bias, out, out2


def int8_scaled_mm(
    a: torch.Tensor,
    b: torch.Tensor,
    scale_a: torch.Tensor,
    scale_b: torch.Tensor,
    out_dtype: torch.dtype = torch.bfloat16,
    bias: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """(scale_a * a) @ (scale_b * b) + bias on the GPU (sm90a), as vLLM's cutlass_scaled_mm.

    a: int8 (..., K), row-major (a.stride(-1) == 1; leading dims are flattened into M).
    b: int8 (K, N), column-major (b.stride(0) == 1), e.g. ``w.t()`` of a contiguous (N, K)
       weight. K and N must be multiples of 16.
    scale_a: float32 with 1 (per-tensor) or M (per-token, e.g. shape (M, 1)) elements.
    scale_b: float32 with 1 (per-tensor) or N (per-channel) elements.
    bias: optional (N,) tensor in out_dtype.
    out_dtype: torch.bfloat16 or torch.float16.
    out: optional contiguous output of shape a.shape[:-1] + (N,) in out_dtype.

    Returns the output, of shape a.shape[:-1] + (N,).

    Speed: where a's memory (its storage) runs on past row M to the end of the kernel's last
    tile of rows (at most 256; scaled_int8_quant's output runs on to a multiple of 256 rows),
    the kernels read those rows rather than load a partly out-of-bounds last tile, which is
    slower (H200, M = 257, N = K = 8192: 44.9 us against 70.4).
    The result does not depend on them. A compact a whose last tile is less than half inside
    it is copied into such memory first where M K <= 2^24 (int8_scaled_mm_copies_activation),
    which costs less than the partial tile there.
    """
    a2, b, scale_a, scale_b, bias, out, out2 = _prepare(a, b, scale_a, scale_b, out_dtype, bias, out)
    if out2.numel() > 0:
        ops.int8_scaled_mm(out2, a2, b, scale_a, scale_b, bias)
    return out


def _int8_scaled_mm_config(a, b, scale_a, scale_b, config: int, out_dtype=torch.bfloat16, bias=None, out=None):
    """Like int8_scaled_mm, but forces kernel configuration `config` (an index into
    int8_scaled_mm_configs()). For tuning and tests."""
    a2, b, scale_a, scale_b, bias, out, out2 = _prepare(a, b, scale_a, scale_b, out_dtype, bias, out)
    if out2.numel() > 0:
        ops.int8_scaled_mm_config(out2, a2, b, scale_a, scale_b, bias, config)
    return out


def int8_scaled_mm_configs() -> list[str]:
    """Names of the kernel configurations, indexed by config id (works without a GPU)."""
    return list(ops.int8_scaled_mm_configs())


def int8_scaled_mm_pick_config(m: int, n: int, k: int) -> int:
    """The config id the dispatch table picks for an (M, N, K) problem."""
    return int(ops.int8_scaled_mm_pick_config(m, n, k))


def whole_tile_rows(m: int) -> int:
    """Rows of activation memory past which no kernel's last tile reaches: M rounded up to a
    multiple of 256, the largest tile extent along M (kWholeTileRows in
    csrc/gemm/int8_scaled_mm_dispatch.cpp)."""
    return -(-m // 256) * 256


def int8_scaled_mm_copies_activation(m: int, n: int, k: int, rows_readable: int) -> bool:
    """Whether int8_scaled_mm copies an (M, K) activation whose memory holds rows_readable
    rows (M for a compact one) into memory of whole tiles before its GEMM."""
    return bool(ops.int8_scaled_mm_copies_activation(m, n, k, rows_readable))
