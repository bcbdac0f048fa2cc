"""INT8 scaled GEMM in Triton, with the same interface and semantics as the CUTLASS op
(qbench_ext.gemm.int8_scaled_mm):

    out = (scale_a * a) @ (scale_b * b) + bias

a int8 (..., K) row-major, b int8 (K, N) column-major (b = w.t() of a contiguous (N, K) w),
scale_a fp32 of 1 or M elements, scale_b fp32 of 1 or N elements, bias (N,) in out_dtype.
The int8 products are accumulated in int32 (tl.dot), then, in fp32,
out = scale_a[m] * (scale_b[n] * float(acc)) + bias[n], rounded once to out_dtype, as in the
CUTLASS epilogue. The arguments are validated by the CUTLASS wrapper's own checks, so both
accept and reject the same inputs (K and N multiples of 16, 16-byte aligned rows/columns:
Triton itself would not need the alignment, but the two APIs are kept identical).

Each program computes one BLOCK_M x BLOCK_N tile, walking K in BLOCK_K steps; programs are
ordered in GROUP_M-row bands so that consecutive programs share tiles of b in L2. Scalar
scales are read with stride 0 (scale_a[m * stride]). A few configurations are autotuned per
(power-of-two M bucket, N, K), small-M ones (BLOCK_M = 16/32) included.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..gemm import _prepare


def _config(bm, bn, bk, stages, warps, group_m=8):
    return triton.Config(
        {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": group_m}, num_stages=stages, num_warps=warps
    )


# Shared memory per stage is (BLOCK_M + BLOCK_N) * BLOCK_K bytes; all fit in 227 KiB (sm90).
_CONFIGS = [
    # Small M (decode): thin tiles, long K steps; mma.sync (BLOCK_M < 64).
    _config(16, 64, 256, 5, 4),
    _config(32, 128, 256, 4, 4),
    # Medium M.
    _config(64, 128, 256, 3, 4),
    _config(64, 256, 128, 4, 4),
    _config(128, 64, 128, 4, 4),
    # Large M: wgmma tiles.
    _config(128, 128, 128, 4, 8),
    _config(128, 256, 128, 3, 8),
    _config(256, 128, 128, 3, 8),
]


def _prune_configs(configs, named_args, **kwargs):
    """Skip tiles far taller than M: for M <= 32 only BLOCK_M <= 64, for M <= 128 only
    BLOCK_M <= 128; for M >= 256 the thin small-M tiles (BLOCK_M < 64)."""
    m_bucket = named_args["M_BUCKET"]
    if m_bucket <= 32:
        keep = [c for c in configs if c.kwargs["BLOCK_M"] <= 64]
    elif m_bucket <= 128:
        keep = [c for c in configs if c.kwargs["BLOCK_M"] <= 128]
    else:
        keep = [c for c in configs if c.kwargs["BLOCK_M"] >= 64]
    return keep or configs


@triton.autotune(
    configs=_CONFIGS,
    key=["M_BUCKET", "N", "K"],
    prune_configs_by={"early_config_prune": _prune_configs},
)
@triton.heuristics({"EVEN_K": lambda args: args["K"] % args["BLOCK_K"] == 0})
@triton.jit
def _int8_scaled_mm_kernel(
    a_ptr,
    b_ptr,
    out_ptr,
    scale_a_ptr,
    scale_b_ptr,
    bias_ptr,
    M,
    N,
    K,
    stride_am,
    stride_bn,
    stride_om,
    stride_sa,  # 0: one scale for all rows; 1: per row
    stride_sb,  # 0: one scale for all columns; 1: per column
    M_BUCKET,  # autotuning key only
    HAS_BIAS: tl.constexpr,
    EVEN_K: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
):
    pid = tl.program_id(0)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    # Bands of GROUP_M tile rows: a band walks its columns together, so tiles of b are reused
    # from L2 by GROUP_M programs in a row.
    pids_per_band = GROUP_M * num_pid_n
    band = pid // pids_per_band
    first_m = band * GROUP_M
    band_rows = tl.minimum(num_pid_m - first_m, GROUP_M)
    pid_m = first_m + (pid % pids_per_band) % band_rows
    pid_n = (pid % pids_per_band) // band_rows

    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    # Rows / columns past the end are clamped onto valid ones (loaded, never stored), so the
    # loads of the K loop need no M / N masks.
    rm = tl.minimum(offs_m, M - 1).to(tl.int64)
    rn = tl.minimum(offs_n, N - 1).to(tl.int64)
    offs_k = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + rm[:, None] * stride_am + offs_k[None, :]
    b_ptrs = b_ptr + offs_k[:, None] + rn[None, :] * stride_bn

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        if EVEN_K:
            a = tl.load(a_ptrs)
            b = tl.load(b_ptrs)
        else:
            k_left = K - k * BLOCK_K
            a = tl.load(a_ptrs, mask=offs_k[None, :] < k_left, other=0)
            b = tl.load(b_ptrs, mask=offs_k[:, None] < k_left, other=0)
        acc = tl.dot(a, b, acc, out_dtype=tl.int32)
        a_ptrs += BLOCK_K
        b_ptrs += BLOCK_K

    sa = tl.load(scale_a_ptr + rm * stride_sa)
    sb = tl.load(scale_b_ptr + rn * stride_sb)
    out = sa[:, None] * (sb[None, :] * acc.to(tl.float32))
    if HAS_BIAS:
        out = out + tl.load(bias_ptr + rn).to(tl.float32)[None, :]
    out_ptrs = out_ptr + offs_m[:, None].to(tl.int64) * stride_om + offs_n[None, :]
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    tl.store(out_ptrs, out.to(out_ptr.dtype.element_ty), mask=mask)


def int8_scaled_mm(
    a: torch.Tensor,
    b: torch.Tensor,
    scale_a: torch.Tensor,
    scale_b: torch.Tensor,
    out_dtype: torch.dtype = torch.bfloat16,
    bias: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """(scale_a * a) @ (scale_b * b) + bias in Triton; the interface of
    qbench_ext.gemm.int8_scaled_mm (see there, and this module's docstring).

    Returns the output, of shape a.shape[:-1] + (N,), in out_dtype.
    """
    a2, b, scale_a, scale_b, bias, out, out2 = _prepare(a, b, scale_a, scale_b, out_dtype, bias, out)
    m, k = a2.shape
    n = b.shape[1]
    if m == 0 or n == 0:
        return out
    if k == 0:  # an empty sum: out = bias (or 0), as the CUTLASS op
        if bias is None:
            out2.zero_()
        else:
            out2.copy_(bias.unsqueeze(0).expand(m, n))
        return out

    def grid(meta):
        return (triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(n, meta["BLOCK_N"]),)

    _int8_scaled_mm_kernel[grid](
        a2,
        b,
        out2,
        scale_a,
        scale_b,
        bias if bias is not None else scale_b,  # never read without HAS_BIAS
        m,
        n,
        k,
        a2.stride(0),
        b.stride(1),
        out2.stride(0),
        0 if scale_a.numel() == 1 else 1,
        0 if scale_b.numel() == 1 else 1,
        triton.next_power_of_2(m),
        HAS_BIAS=bias is not None,
    )
    return out
