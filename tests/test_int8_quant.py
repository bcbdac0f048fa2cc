"""Per-token / per-tensor INT8 quantization (scaled_int8_quant): the PyTorch reference on
hand-computed cases and the argument checks (CPU), then the CUDA kernel bit-exact against the
reference on the GPU over many shapes, strides, dtypes and value patterns, poisoned outputs,
CUDA graphs, torch.compile and opcheck (`pytest -m gpu`)."""

from __future__ import annotations

import math

import pytest
import torch

from qbench_ext import int8_quant, reference_int8_quant
from qbench_ext._group_quant_args import INPUT_DTYPES

FLT_MIN = 2.0**-126
CUDA_IMPL = pytest.param(int8_quant, id="cuda")
REF_IMPL = pytest.param(reference_int8_quant, id="reference")


def ref(x, scale=None, azp=None, symmetric=True):
    return reference_int8_quant.scaled_int8_quant(x, scale, azp, symmetric)


def t(rows, dtype=torch.float32):
    return torch.tensor(rows, dtype=dtype)


# --- Reference, hand-computed (CPU) ---------------------------------------------------------


@pytest.mark.parametrize("dtype", INPUT_DTYPES)
def test_symmetric_dynamic_by_hand(dtype):
    x = t([[1.0, -2.0, 0.5, 127.0], [0.0, 0.0, 0.0, 0.0], [2.5, -3.5, 1.5, -127.0], [-0.0, 0.0, -0.0, 0.0]], dtype)
    q, s, azp = ref(x)
    assert azp is None
    assert s.dtype == torch.float32 and s.shape == (4, 1)
    # s = 1: x / s exact; half-way values round to even; zero rows get s = 2^-126 and q = 0.
    assert s.flatten().tolist() == [1.0, FLT_MIN, 1.0, FLT_MIN]
    assert q.dtype == torch.int8 and q.shape == x.shape
    assert q.tolist() == [[1, -2, 0, 127], [0, 0, 0, 0], [2, -4, 2, -127], [0, 0, 0, 0]]


def test_symmetric_dynamic_scale_is_correctly_rounded():
    x = t([[0.1, 1.0, -3.0, 0.7]])
    q, s, _ = ref(x)
    expected = torch.tensor(3.0) / torch.tensor(127.0)
    assert s.item() == expected.item()
    assert q.tolist() == [[round(v / expected.item()) for v in (0.1, 1.0, -3.0, 0.7)]]


def test_symmetric_dynamic_non_finite_rows():
    nan, inf = float("nan"), float("inf")
    x = t([[nan, 1.0, 2.0, 3.0], [inf, 1.0, -2.0, 0.0], [-inf, 5.0, 0.0, 1.0]])
    q, s, _ = ref(x)
    assert math.isnan(s[0].item()) and s[1].item() == inf and s[2].item() == inf
    assert q.tolist() == [[0, 0, 0, 0]] * 3


@pytest.mark.parametrize("dtype", INPUT_DTYPES)
def test_asymmetric_dynamic_by_hand(dtype):
    x = t(
        [
            [0.0, 10.0, 100.5, 255.0],  # lo = 0, hi = 255: s = 1, azp = -128
            [-55.0, 0.0, 2.5, 200.0],  # span 255: s = 1, azp = round(-128 + 55) = -73
            [-255.0, -5.0, -5.0, -5.0],  # all negative: hi = 0, azp = 127
            [0.0, 0.0, 0.0, 0.0],  # zero range: s = 2^-126, azp = -128, q = -128
            [3.0, 3.0, 3.0, 3.0],  # constant: lo = 0, s = 3 / 255, q = 127
        ],
        dtype,
    )
    q, s, azp = ref(x, symmetric=False)
    assert s.shape == (5, 1) and azp.shape == (5, 1) and azp.dtype == torch.int32
    assert s.flatten().tolist()[:4] == [1.0, 1.0, 1.0, FLT_MIN]
    assert s[4].item() == (torch.tensor(3.0) / torch.tensor(255.0)).item()
    assert azp.flatten().tolist() == [-128, -73, 127, -128, -128]
    assert q.tolist() == [
        [-128, -118, -28, 127],  # 100.5 rounds to 100 (half to even)
        [-128, -73, -71, 127],  # 2.5 rounds to 2
        [-128, 122, 122, 122],
        [-128, -128, -128, -128],
        [127, 127, 127, 127],
    ]


def test_asymmetric_dynamic_follows_vllm_formula_on_mixed_sign_rows():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 300, generator=gen) * 1000 - 300  # every row holds both signs
    q, s, azp = ref(x, symmetric=False)
    # vLLM's definition: s = (max - min) / 255, azp = round(-128 - min / s).
    hi = x.amax(dim=1, keepdim=True)
    lo = x.amin(dim=1, keepdim=True)
    s_v = (hi - lo) / torch.full_like(hi, 255.0)
    azp_v = (torch.full_like(lo, -128.0) - lo / s_v).round().to(torch.int32)
    q_v = ((x / s_v).round() + azp_v).clamp(-128, 127).to(torch.int8)
    assert torch.equal(s, s_v) and torch.equal(azp, azp_v) and torch.equal(q, q_v)


def test_asymmetric_dynamic_non_finite_rows():
    nan, inf = float("nan"), float("inf")
    x = t([[nan, 1.0, 2.0, 3.0], [inf, 1.0, -2.0, 0.0], [-inf, 5.0, 0.0, 1.0], [-inf, inf, 0.0, 1.0]])
    q, s, azp = ref(x, symmetric=False)
    assert math.isnan(s[0].item()) and s[1:].flatten().tolist() == [inf, inf, inf]
    assert azp.flatten().tolist() == [0, -128, 0, 0]
    assert q.tolist() == [[0] * 4, [-128] * 4, [0] * 4, [0] * 4]


def test_static_by_hand():
    x = t([[1.0, -2.0, 0.25, 0.75], [100.0, -100.0, float("nan"), 0.0]])
    scale = torch.tensor([0.5])
    q, s, azp = ref(x, scale)
    assert s is scale and azp is None
    assert q.tolist() == [[2, -4, 0, 2], [127, -128, 0, 0]]  # 0.5 -> 0, 1.5 -> 2
    zp = torch.tensor(10, dtype=torch.int32)
    q, s, azp = ref(x, scale, zp, symmetric=False)
    assert s is scale and azp is zp
    assert q.tolist() == [[12, 6, 10, 12], [127, -128, 10, 10]]


def test_static_azp_sum_is_exact():
    # round(x / s) + azp is formed exactly, even when both terms are far outside int32 / int8.
    x = t([[2.0**31, -(2.0**31), 1e30, -1e30, 2.0**31 + 256.0]])
    one = torch.tensor(1.0)
    q, _, _ = ref(x, one, torch.tensor([-(2**31)], dtype=torch.int32), symmetric=False)
    assert q.tolist() == [[0, -128, 127, -128, 127]]
    q, _, _ = ref(x, one, torch.tensor([2**31 - 1], dtype=torch.int32), symmetric=False)
    assert q.tolist() == [[127, -1, 127, -128, 127]]


def test_static_non_finite_scales():
    x = t([[1.0, -1.0, 0.0, 3.0]])
    q, _, _ = ref(x, torch.tensor(0.0))
    assert q.tolist() == [[127, -128, 0, 127]]  # x / 0 = +-Inf saturates, 0 / 0 = NaN -> 0
    q, _, _ = ref(x, torch.tensor(float("nan")))
    assert q.tolist() == [[0, 0, 0, 0]]
    q, _, _ = ref(x, torch.tensor(-0.5))
    assert q.tolist() == [[-2, 2, 0, -6]]


def test_shapes_and_empty():
    x = torch.randn(2, 3, 40)
    q, s, azp = ref(x, symmetric=False)
    assert q.shape == (2, 3, 40) and q.is_contiguous() and s.shape == (6, 1) and azp.shape == (6, 1)
    q, s, _ = ref(torch.randn(0, 16))
    assert q.shape == (0, 16) and s.shape == (0, 1)
    q, s, azp = ref(torch.randn(3, 0), symmetric=False)
    assert q.shape == (3, 0) and s.flatten().tolist() == [FLT_MIN] * 3 and azp.flatten().tolist() == [-128] * 3
    q, s, _ = ref(torch.randn(7))  # one token
    assert q.shape == (7,) and s.shape == (1, 1)


@pytest.mark.parametrize("m", (1, 255, 256, 257))
def test_q_memory_runs_to_a_multiple_of_256_rows(m):
    """int8_scaled_mm loads whole tiles where the activation's memory holds them, so q's does
    (the rows past M are never written)."""
    q, _, _ = ref(torch.randn(m, 48))
    assert q.shape == (m, 48) and q.is_contiguous() and q.storage_offset() == 0
    assert q.untyped_storage().nbytes() == -(-m // 256) * 256 * 48


def test_strided_rows_match_contiguous():
    base = torch.randn(5, 48)
    x = base[:, 4:36]
    assert not x.is_contiguous()
    for symmetric in (True, False):
        got = ref(x, symmetric=symmetric)
        want = ref(x.contiguous(), symmetric=symmetric)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


# --- Argument checks (CPU; both implementations check before touching the GPU) -----------


def _bad_calls():
    x = torch.randn(4, 32)
    s1 = torch.tensor([0.1])
    z1 = torch.tensor([3], dtype=torch.int32)
    return [
        ("x-type", TypeError, "x must be a torch.Tensor", ([[1.0]],), {}),
        ("x-dtype", TypeError, "x must be bfloat16", (x.to(torch.int32),), {}),
        ("x-fp64", TypeError, "x must be bfloat16", (x.double(),), {}),
        ("x-0d", ValueError, "at least one dimension", (torch.tensor(1.0),), {}),
        ("x-last-strided", ValueError, "last dim must be contiguous", (x.t(),), {}),
        (
            "x-not-a-view",
            ValueError,
            "leading dims",
            (torch.randn(4, 6, 32).transpose(0, 1),),
            {},
        ),
        ("symmetric-type", TypeError, "symmetric must be a bool", (x,), {"symmetric": 1}),
        ("scale-type", TypeError, "scale must be a torch.Tensor", (x,), {"scale": 0.1}),
        ("scale-dtype", TypeError, "scale must have dtype torch.float32", (x,), {"scale": s1.double()}),
        ("scale-numel", ValueError, "scale must have exactly one element", (x,), {"scale": torch.ones(4)}),
        ("scale-device", ValueError, "scale must be on x's device", (x,), {"scale": s1.to("meta")}),
        ("azp-type", TypeError, "azp must be a torch.Tensor", (x,), {"scale": s1, "azp": 3, "symmetric": False}),
        (
            "azp-dtype",
            TypeError,
            "azp must have dtype torch.int32",
            (x,),
            {"scale": s1, "azp": z1.long(), "symmetric": False},
        ),
        (
            "azp-numel",
            ValueError,
            "azp must have exactly one element",
            (x,),
            {"scale": s1, "azp": torch.zeros(2, dtype=torch.int32), "symmetric": False},
        ),
        ("azp-dynamic", ValueError, "azp can only be given with a static scale", (x,), {"azp": z1}),
        (
            "azp-dynamic-asym",
            ValueError,
            "azp can only be given with a static scale",
            (x,),
            {"azp": z1, "symmetric": False},
        ),
        ("azp-symmetric", ValueError, "symmetric=True", (x,), {"scale": s1, "azp": z1}),
        ("static-asym-no-azp", ValueError, "needs azp", (x,), {"scale": s1, "symmetric": False}),
    ]


BAD_CALLS = _bad_calls()


@pytest.mark.parametrize("impl", [CUDA_IMPL, REF_IMPL])
@pytest.mark.parametrize("case", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_argument_errors(impl, case):
    _, exc, match, args, kwargs = case
    with pytest.raises(exc, match=match):
        impl.scaled_int8_quant(*args, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_cuda_wrapper_without_gpu():
    with pytest.raises(RuntimeError, match="need a CUDA GPU"):
        int8_quant.scaled_int8_quant(torch.randn(4, 32))


# --- GPU: the CUDA kernel against the reference ------------------------------------------



def gpu_test(f):
    """Marks a test `gpu` and makes it skip (through the `cuda` fixture) without a GPU."""
    return pytest.mark.gpu(pytest.mark.usefixtures("cuda")(f))


# Poison written into outputs before the kernel runs, which it must overwrite everywhere.
Q_POISON = 77
SCALE_POISON = 0x7FBADBAD  # a NaN with a payload
AZP_POISON = 0x5A5A5A5A


def _gen(seed):
    return torch.Generator(device="cuda").manual_seed(seed)


def _values(m, k, dtype, gen, pattern):
    """Rows of random magnitudes (a different power of ten per row), with some rows replaced
    by special patterns."""
    decades = (-4, 4) if dtype == torch.float16 else (-30, 30)
    exps = torch.randint(*decades, (m, 1), generator=gen, device="cuda").float()
    x = torch.randn(m, k, generator=gen, device="cuda") * torch.pow(10.0, exps)
    if pattern == "offset":  # rows of one sign, narrow ranges far from 0
        x = x.abs() + torch.pow(10.0, exps) * 10
        x = torch.where(torch.arange(m, device="cuda")[:, None] % 2 == 0, x, -x)
    if pattern == "special" and m > 0 and k > 0:
        x[0] = 0.0
        if m > 1:
            x[1] = -0.0
        if m > 2:
            x[2, k // 2] = float("nan")
        if m > 3:
            x[3, 0] = float("inf")
        if m > 4:
            x[4, -1] = -float("inf")
        if m > 5:
            x[5] = 3.0  # constant row
        if m > 6:
            x[6] = torch.randn(k, generator=gen, device="cuda") * 1e-40  # fp32 denormals (0 in bf16/fp16)
        if m > 7:
            x[7] = torch.randn(k, generator=gen, device="cuda").abs() * -1.0
        if m > 8:
            x[8, : k // 2] = 65504.0
    if pattern == "ties":
        # s = 1 exactly (amax = 127): x / s are integers and half-integers.
        x = (torch.randint(-254, 255, (m, k), generator=gen, device="cuda") / 2).float()
        if k > 0:
            x[:, 0] = 127.0
    return x.to(dtype)


def _assert_same(got, want):
    q, s, azp = got
    q_ref, s_ref, azp_ref = want
    assert q.shape == q_ref.shape and q.dtype == torch.int8
    mismatch = (q != q_ref).nonzero()
    assert mismatch.numel() == 0, f"{mismatch.shape[0]} q mismatches, first at {mismatch[0].tolist()}"
    torch.testing.assert_close(s, s_ref, rtol=0, atol=0, equal_nan=True)
    if azp_ref is None:
        assert azp is None
    else:
        assert torch.equal(azp, azp_ref)


KS = [1, 7, 16, 100, 127, 512, 1000, 4096, 5120, 8200, 14336, 16384, 40000]


@pytest.mark.parametrize("symmetric", [True, False], ids=["sym", "asym"])
@pytest.mark.parametrize("dtype", INPUT_DTYPES, ids=str)
@pytest.mark.parametrize("k", KS)
@gpu_test
def test_dynamic_matches_reference(k, dtype, symmetric, seed):
    gen = _gen(seed)
    for m, pattern in ((1, "random"), (3, "special"), (37, "offset"), (300, "random"), (11, "special")):
        if m * k > 4_000_000:
            m = max(1, 4_000_000 // k)
        x = _values(m, k, dtype, gen, pattern)
        _assert_same(int8_quant.scaled_int8_quant(x, symmetric=symmetric), ref(x, symmetric=symmetric))


@pytest.mark.parametrize("symmetric", [True, False], ids=["sym", "asym"])
@pytest.mark.parametrize("dtype", INPUT_DTYPES, ids=str)
@gpu_test
def test_dynamic_ties_and_many_rows(dtype, symmetric, seed):
    gen = _gen(seed)
    for m, k in ((4099, 64), (2048, 4096), (513, 300)):
        x = _values(m, k, dtype, gen, "ties")
        _assert_same(int8_quant.scaled_int8_quant(x, symmetric=symmetric), ref(x, symmetric=symmetric))


def _assert_poisoned_call_matches(x, symmetric, q_row_stride=None):
    """dynamic_scaled_int8_quant called on poisoned outputs (q rows `q_row_stride` apart) equals
    the reference everywhere."""
    from qbench_ext._ops import ops

    m, k = x.shape
    q_buffer = torch.full((m, q_row_stride or k), Q_POISON, dtype=torch.int8, device="cuda")
    q = q_buffer[:, :k]
    s = torch.full((m, 1), SCALE_POISON, dtype=torch.int32, device="cuda").view(torch.float32)
    azp = None if symmetric else torch.full((m, 1), AZP_POISON, dtype=torch.int32, device="cuda")
    ops.dynamic_scaled_int8_quant(q, x, s, azp)
    _assert_same((q, s, azp), ref(x, symmetric=symmetric))
    assert (q_buffer[:, k:] == Q_POISON).all()


@pytest.mark.parametrize("symmetric", [True, False], ids=["sym", "asym"])
@pytest.mark.parametrize("dtype", INPUT_DTYPES, ids=str)
@gpu_test
def test_dynamic_long_rows_many_per_block(dtype, symmetric, seed):
    """Rows of more than 16 KB (up to 56 KB) with many rows go through the shared-memory ring
    kernel, each block taking several rows in turn (the ring wraps around): contiguous,
    strided and broadcast (stride 0) rows, q rows of an odd stride (scalar stores), row counts
    that leave the last blocks short."""
    gen = _gen(seed)
    for m, k in ((2053, 8200), (4099, 14336 if dtype != torch.float32 else 7168), (997, 12000)):
        x = _values(m, k, dtype, gen, "special")
        _assert_poisoned_call_matches(x, symmetric)
    x = _values(700, 8200 + 64, dtype, gen, "random")[:, :8200]
    _assert_poisoned_call_matches(x, symmetric, q_row_stride=8200 + 3)
    x = _values(1, 8200, dtype, gen, "random").expand(600, 8200)
    _assert_poisoned_call_matches(x, symmetric)


@gpu_test
def test_dynamic_past_2_31_elements(seed):
    """A bf16 input of more than 2^31 elements (row offsets past int32), rows of 28 KB (the
    ring kernel): the last rows, and the first, against the reference of those rows alone
    (rows are independent)."""
    k = 14336
    m = (2**31) // k + 300
    gen = _gen(seed)
    x = torch.empty(m, k, dtype=torch.bfloat16, device="cuda")
    for start in range(0, m, 16384):  # filled in slices: no float32 copy of the whole input
        rows = min(16384, m - start)
        x[start : start + rows] = _values(rows, k, torch.bfloat16, gen, "random")
    q, s, _ = int8_quant.scaled_int8_quant(x)
    for part in (slice(m - 400, m), slice(0, 64)):
        _assert_same((q[part], s[part], None), ref(x[part]))


@pytest.mark.parametrize("layout", ["aligned-stride", "odd-stride", "odd-offset", "3d", "expanded"])
@pytest.mark.parametrize("dtype", INPUT_DTYPES, ids=str)
@gpu_test
def test_strided_inputs(dtype, layout, seed):
    gen = _gen(seed)
    for k in (64, 1000, 4096):
        if layout == "aligned-stride":
            x = _values(9, k + 16, dtype, gen, "random")[:, :k]
        elif layout == "odd-stride":
            x = _values(9, k + 1, dtype, gen, "random")[:, :k]
        elif layout == "odd-offset":
            x = _values(9, k + 1, dtype, gen, "random")[:, 1:]
        elif layout == "3d":
            x = _values(2 * 3, k + 8, dtype, gen, "random").view(2, 3, k + 8)[..., :k]
        else:
            x = _values(1, k, dtype, gen, "random").expand(5, k)
        for symmetric in (True, False):
            got = int8_quant.scaled_int8_quant(x, symmetric=symmetric)
            _assert_same(got, ref(x, symmetric=symmetric))
            assert got[0].is_contiguous() and got[0].shape == x.shape


@pytest.mark.parametrize("with_azp", [False, True], ids=["sym", "azp"])
@pytest.mark.parametrize("dtype", INPUT_DTYPES, ids=str)
@pytest.mark.parametrize("k", [16, 100, 4096, 40000])
@gpu_test
def test_static_matches_reference(k, dtype, with_azp, seed):
    gen = _gen(seed)
    x = _values(13, k, dtype, gen, "special" if k >= 16 else "random")
    scales = [0.01, 1.0, 3.3e-3, 1e-30, 1e30, 2.0**-127, 0.0, -0.5, float("inf"), float("nan")]
    azps = [0, 7, -100, 2**31 - 1, -(2**31)] if with_azp else [None]
    for sv in scales:
        for av in azps:
            scale = torch.tensor([sv], dtype=torch.float32, device="cuda")
            azp = None if av is None else torch.tensor([av], dtype=torch.int32, device="cuda")
            got = int8_quant.scaled_int8_quant(x, scale, azp, symmetric=not with_azp)
            want = ref(x, scale, azp, symmetric=not with_azp)
            assert got[1] is scale and got[2] is azp
            assert torch.equal(got[0], want[0]), (sv, av)


@gpu_test
def test_static_outliers(seed):
    """Static scales with elements far outside the scale's range (slow division path per
    chunk) next to ordinary ones."""
    gen = _gen(seed)
    for dtype in INPUT_DTYPES:
        x = torch.randn(64, 1024, generator=gen, device="cuda")
        big = 6e4 if dtype == torch.float16 else 1e30
        x[torch.rand(64, 1024, generator=gen, device="cuda") < 0.01] = big
        x = x.to(dtype)
        for sv in (1e-3, 2.0**-100, 2.0**100):
            scale = torch.tensor([sv], device="cuda")
            assert torch.equal(int8_quant.scaled_int8_quant(x, scale)[0], ref(x, scale)[0])


@pytest.mark.parametrize("symmetric", [True, False], ids=["sym", "asym"])
@gpu_test
def test_poisoned_outputs(symmetric, seed):
    """Calls the op directly on outputs filled with poison: every element must be written."""
    from qbench_ext._ops import ops

    gen = _gen(seed)
    for dtype in INPUT_DTYPES:
        for m, k in ((1, 1), (5, 100), (257, 4096), (3, 40000), (700, 24)):
            x = _values(m, k, dtype, gen, "special")
            _assert_poisoned_call_matches(x, symmetric)
            scale = torch.tensor([0.02], device="cuda")
            zp = None if symmetric else torch.tensor([5], dtype=torch.int32, device="cuda")
            q = torch.full((m, k), Q_POISON, dtype=torch.int8, device="cuda")
            ops.static_scaled_int8_quant(q, x, scale, zp)
            assert torch.equal(q, ref(x, scale, zp, symmetric)[0])


@gpu_test
def test_empty_inputs():
    q, s, azp = int8_quant.scaled_int8_quant(torch.empty(0, 64, device="cuda"), symmetric=False)
    assert q.shape == (0, 64) and s.shape == (0, 1) and azp.shape == (0, 1)
    x = torch.empty(3, 0, device="cuda", dtype=torch.bfloat16)
    _assert_same(int8_quant.scaled_int8_quant(x, symmetric=False), ref(x, symmetric=False))
    _assert_same(int8_quant.scaled_int8_quant(x), ref(x))
    scale = torch.tensor([1.0], device="cuda")
    assert int8_quant.scaled_int8_quant(x, scale)[0].shape == (3, 0)


@gpu_test
def test_op_argument_checks():
    """The C++ checks behind the Python ones, for direct torch.ops calls."""
    from qbench_ext._ops import ops

    x = torch.randn(4, 32, device="cuda")
    q = torch.empty(4, 32, dtype=torch.int8, device="cuda")
    s = torch.empty(4, 1, device="cuda")
    with pytest.raises(ValueError, match="scale must be contiguous with M"):
        ops.dynamic_scaled_int8_quant(q, x, torch.empty(3, 1, device="cuda"), None)
    with pytest.raises(TypeError, match="q must be int8"):
        ops.dynamic_scaled_int8_quant(q.view(torch.uint8), x, s, None)
    with pytest.raises(TypeError, match="x must be bfloat16"):
        ops.dynamic_scaled_int8_quant(q, x.double(), s, None)
    with pytest.raises(ValueError, match="q must have x's shape"):
        ops.dynamic_scaled_int8_quant(q[:, :16], x, s, None)
    with pytest.raises(ValueError, match="one CUDA device"):
        ops.dynamic_scaled_int8_quant(q, x.cpu(), s, None)
    with pytest.raises(ValueError, match="scale must have one element"):
        ops.static_scaled_int8_quant(q, x, s, None)
    with pytest.raises(TypeError, match="azp must be int32"):
        ops.static_scaled_int8_quant(q, x, s[:1], torch.zeros(1, device="cuda"))


@pytest.mark.parametrize("mode", ["dynamic-sym", "dynamic-asym", "static", "static-azp"])
@gpu_test
def test_cuda_graph(mode, seed):
    gen = _gen(seed)
    x = _values(333, 4096, torch.bfloat16, gen, "random")
    scale = torch.tensor([0.01], device="cuda")
    zp = torch.tensor([3], dtype=torch.int32, device="cuda")
    args = {
        "dynamic-sym": {},
        "dynamic-asym": {"symmetric": False},
        "static": {"scale": scale},
        "static-azp": {"scale": scale, "azp": zp, "symmetric": False},
    }[mode]
    int8_quant.scaled_int8_quant(x, **args)  # warm-up outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = int8_quant.scaled_int8_quant(x, **args)
    x.copy_(_values(333, 4096, torch.bfloat16, gen, "special"))
    graph.replay()
    torch.cuda.synchronize()
    _assert_same(out, ref(x, **args))


@pytest.mark.parametrize("mode", ["dynamic-sym", "dynamic-asym", "static-azp"])
@gpu_test
def test_torch_compile(mode, seed):
    gen = _gen(seed)
    x = _values(65, 1000, torch.float16, gen, "random")
    scale = torch.tensor([0.01], device="cuda")
    zp = torch.tensor([3], dtype=torch.int32, device="cuda")
    args = {
        "dynamic-sym": {},
        "dynamic-asym": {"symmetric": False},
        "static-azp": {"scale": scale, "azp": zp, "symmetric": False},
    }[mode]

    def f(x):
        return int8_quant.scaled_int8_quant(x * 2, **args)

    torch._dynamo.reset()
    got = torch.compile(f, fullgraph=True)(x)
    _assert_same(got, ref(x * 2, **args))


@gpu_test
def test_opcheck(seed):
    from qbench_ext._ops import ops

    gen = _gen(seed)
    for dtype in INPUT_DTYPES:
        x = _values(17, 200, dtype, gen, "random")
        q = torch.empty(17, 200, dtype=torch.int8, device="cuda")
        s = torch.empty(17, 1, device="cuda")
        azp = torch.empty(17, 1, dtype=torch.int32, device="cuda")
        torch.library.opcheck(ops.dynamic_scaled_int8_quant.default, (q, x, s, None))
        torch.library.opcheck(ops.dynamic_scaled_int8_quant.default, (q, x, s, azp))
        scale = torch.tensor([0.05], device="cuda")
        zp = torch.tensor([-3], dtype=torch.int32, device="cuda")
        torch.library.opcheck(ops.static_scaled_int8_quant.default, (q, x, scale, None))
        torch.library.opcheck(ops.static_scaled_int8_quant.default, (q, x, scale, zp))


@gpu_test
@pytest.mark.parametrize("dtype", INPUT_DTYPES, ids=str)
@pytest.mark.parametrize("k", [1, 100, 4096, 14336, 40000])
def test_triton_matches_reference(k, dtype, seed):
    """qbench_ext.triton_ref.scaled_int8_quant: the same bit-exact contract."""
    from qbench_ext.triton_ref.scaled_int8_quant import scaled_int8_quant as triton_quant

    gen = _gen(seed)
    for m, pattern in ((1, "random"), (11, "special"), (37, "offset"), (200, "ties")):
        x = _values(m, k, dtype, gen, pattern)
        for symmetric in (True, False):
            _assert_same(triton_quant(x, symmetric=symmetric), ref(x, symmetric=symmetric))
        x = x[:, : max(1, k - 1)]  # strided rows
        scale = torch.tensor([0.013], device="cuda")
        zp = torch.tensor([-9], dtype=torch.int32, device="cuda")
        assert torch.equal(triton_quant(x, scale)[0], ref(x, scale)[0])
        assert torch.equal(triton_quant(x, scale, zp, False)[0], ref(x, scale, zp, False)[0])
