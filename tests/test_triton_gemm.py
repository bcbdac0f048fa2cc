"""The Triton INT8 scaled GEMM (qbench_ext.triton_ref.int8_scaled_mm): argument checks (CPU;
the same as the CUTLASS op's) and, on the GPU, results within one unit in the last place of
out_dtype of the exact product (`pytest -m gpu`)."""

from __future__ import annotations

import pytest
import torch

from qbench_ext.reference_gemm import compare_to_exact, int8_scaled_mm_exact, ulp
from qbench_ext.triton_ref.int8_scaled_mm import int8_scaled_mm


def _operands(m, n, k, device="cpu", gen=None):
    a = torch.randint(-128, 128, (m, k), dtype=torch.int8, device=device, generator=gen)
    w = torch.randint(-128, 128, (n, k), dtype=torch.int8, device=device, generator=gen)
    return a, w.t()


# --- Argument checks (CPU) ------------------------------------------------------------------


def _bad_calls():
    a, b = _operands(8, 32, 64)
    sa = torch.ones(8, 1)
    sb = torch.ones(32)
    ok = (a, b, sa, sb)
    return [
        ("a-type", TypeError, "a must be a torch.Tensor", (a.tolist(), b, sa, sb), {}),
        ("a-dtype", TypeError, "a must be int8", (a.float(), b, sa, sb), {}),
        ("b-dtype", TypeError, "b must be int8", (a, b.to(torch.uint8), sa, sb), {}),
        ("scale_a-dtype", TypeError, "scale_a must be float32", (a, b, sa.half(), sb), {}),
        ("scale_b-dtype", TypeError, "scale_b must be float32", (a, b, sa, sb.double()), {}),
        ("out_dtype", TypeError, "out_dtype must be", ok, {"out_dtype": torch.float32}),
        ("a-1d", ValueError, "a must have at least 2 dims", (a[0], b, sa, sb), {}),
        ("b-3d", ValueError, "b must be 2-D", (a, b.unsqueeze(0), sa, sb), {}),
        ("k-mismatch", ValueError, "must equal b's first dim", (a[:, :48], b, sa, sb), {}),
        ("k-align", ValueError, "multiples of 16", (a[:, :40], b[:40], sa, sb), {}),
        ("n-align", ValueError, "multiples of 16", (a, b[:, :24], sa, sb[:24]), {}),
        ("a-col-major", ValueError, "a must be row-major", (a.t().contiguous().t(), b, sa, sb), {}),
        ("b-row-major", ValueError, "b must be column-major", (a, b.contiguous(), sa, sb), {}),
        ("scale_a-numel", ValueError, "scale_a must have 1", (a, b, torch.ones(3), sb), {}),
        ("scale_b-numel", ValueError, "scale_b must have 1", (a, b, sa, torch.ones(31)), {}),
        ("bias-dtype", TypeError, "bias must have out_dtype", ok, {"bias": torch.zeros(32)}),
        ("bias-shape", ValueError, "bias must have shape", ok, {"bias": torch.zeros(1, 32, dtype=torch.bfloat16)}),
        ("out-dtype", TypeError, "out must have out_dtype", ok, {"out": torch.empty(8, 32, dtype=torch.float16)}),
        ("out-shape", ValueError, "out must have shape", ok, {"out": torch.empty(8, 16, dtype=torch.bfloat16)}),
        (
            "out-strided",
            ValueError,
            "out must be contiguous",
            ok,
            {"out": torch.empty(8, 64, dtype=torch.bfloat16)[:, :32]},
        ),
    ]


BAD_CALLS = _bad_calls()


@pytest.mark.parametrize("case", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_argument_errors(case):
    _, exc, match, args, kwargs = case
    with pytest.raises(exc, match=match):
        int8_scaled_mm(*args, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_without_gpu():
    a, b = _operands(8, 32, 64)
    with pytest.raises(RuntimeError, match="need a CUDA GPU"):
        int8_scaled_mm(a, b, torch.ones(1), torch.ones(1))


# --- GPU ------------------------------------------------------------------------------------


def gpu_test(f):
    """Marks a test `gpu` and makes it skip (through the `cuda` fixture) without a GPU."""
    return pytest.mark.gpu(pytest.mark.usefixtures("cuda")(f))


def _check(out, a, b, scale_a, scale_b, bias, out_dtype):
    exact = int8_scaled_mm_exact(a, b, scale_a, scale_b, bias)
    assert out.dtype == out_dtype and out.shape == exact.shape
    result = compare_to_exact(out, exact, bias)
    assert result["nan"] == 0 and result["beyond_one_ulp"] == 0, result


def _scales(m, n, per_token, per_channel, gen):
    sa = torch.rand((m, 1) if per_token else (1,), device="cuda", generator=gen) * 0.02 + 0.001
    sb = torch.rand((n,) if per_channel else (1, 1), device="cuda", generator=gen) * 0.02 + 0.001
    return sa, sb


SHAPES = [(1, 256, 512), (7, 128, 4096), (33, 512, 272), (100, 1024, 1024), (257, 384, 2048), (1024, 2048, 1024)]


@gpu_test
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("scales", ["tensor-tensor", "token-tensor", "tensor-channel", "token-channel"])
@pytest.mark.parametrize("use_bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matches_exact_product(shape, use_bias, scales, out_dtype, seed):
    m, n, k = shape
    gen = torch.Generator(device="cuda").manual_seed(seed)
    a, b = _operands(m, n, k, "cuda", gen)
    sa, sb = _scales(m, n, scales.startswith("token"), scales.endswith("channel"), gen)
    bias = torch.randn(n, device="cuda", generator=gen).to(out_dtype) if use_bias else None
    out = int8_scaled_mm(a, b, sa, sb, out_dtype=out_dtype, bias=bias)
    _check(out, a, b, sa, sb, bias, out_dtype)


@gpu_test
def test_layouts_and_out(seed):
    """3-D a, strided rows of a, a padded weight (column stride > K), and out=."""
    gen = torch.Generator(device="cuda").manual_seed(seed)
    m, n, k = 45, 160, 320
    a_full = torch.randint(-128, 128, (m, k + 32), dtype=torch.int8, device="cuda", generator=gen)
    a = a_full[:, :k]
    w_full = torch.randint(-128, 128, (n, k + 64), dtype=torch.int8, device="cuda", generator=gen)
    b = w_full[:, :k].t()
    sa, sb = _scales(m, n, True, True, gen)
    bias = torch.randn(n, device="cuda", generator=gen).to(torch.bfloat16)
    out = int8_scaled_mm(a, b, sa, sb, bias=bias)
    _check(out, a, b, sa, sb, bias, torch.bfloat16)

    a3 = a.contiguous().view(5, 9, k)
    buf = torch.empty(5, 9, n, dtype=torch.float16, device="cuda")
    got = int8_scaled_mm(a3, b, sa.view(5, 9, 1), sb, out_dtype=torch.float16, out=buf)
    assert got is buf and got.shape == (5, 9, n)
    _check(got, a3, b, sa, sb, None, torch.float16)


@gpu_test
def test_empty_and_zero_k():
    a, b = _operands(0, 64, 128, "cuda")
    assert int8_scaled_mm(a, b, torch.ones(1, device="cuda"), torch.ones(1, device="cuda")).shape == (0, 64)
    a, b = _operands(4, 32, 0, "cuda")
    bias = torch.randn(32, device="cuda").to(torch.bfloat16)
    out = int8_scaled_mm(a, b, torch.ones(1, device="cuda"), torch.ones(1, device="cuda"), bias=bias)
    assert torch.equal(out, bias.expand(4, 32))


@gpu_test
def test_large_accumulators(seed):
    """All-(-128) operands: |acc| = 16384 K, past 2^24 for K >= 1024 (the int32 -> fp32
    conversion rounds, still within an ulp of out_dtype)."""
    m, n, k = 64, 128, 8192
    a = torch.full((m, k), -128, dtype=torch.int8, device="cuda")
    b = torch.full((n, k), -128, dtype=torch.int8, device="cuda").t()
    a[0, :100] = 127
    sa = torch.full((m, 1), 1e-4, device="cuda")
    sb = torch.full((n,), 1e-3, device="cuda")
    out = int8_scaled_mm(a, b, sa, sb)
    _check(out, a, b, sa, sb, None, torch.bfloat16)


@gpu_test
def test_matches_cutlass_op(seed):
    """Same inputs through the CUTLASS op: both within an ulp of exact, so within 2 of each
    other (usually equal)."""
    from qbench_ext.gemm import int8_scaled_mm as cutlass_mm

    gen = torch.Generator(device="cuda").manual_seed(seed)
    for m, n, k in ((1, 256, 512), (200, 512, 1024)):
        a, b = _operands(m, n, k, "cuda", gen)
        sa, sb = _scales(m, n, True, True, gen)
        t = int8_scaled_mm(a, b, sa, sb)
        c = cutlass_mm(a, b, sa, sb)
        exact = int8_scaled_mm_exact(a, b, sa, sb)
        assert ((t.double() - c.double()).abs() <= 2 * ulp(exact, torch.bfloat16)).all()
