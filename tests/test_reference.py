"""The PyTorch reference (qbench_ext.reference) against hand-computed values and the
properties its specification promises. Runs on the CPU."""

import functools

import pytest
import torch

from qbench_ext import reference as ref
from qbench_ext._group_quant_args import INPUT_DTYPES, SUPPORTED_GROUP_SIZES

FP8 = torch.float8_e4m3fn
NAN, INF = float("nan"), float("inf")

# The quantizers under test, by name. Each takes (x, group_size, **scale_layout).
QUANTIZERS = {
    "fp8": ref.per_token_group_quant_fp8,
    "fp8_ue8m0": functools.partial(ref.per_token_group_quant_fp8, use_ue8m0=True),
    "int8": ref.per_token_group_quant_int8,
}
QMAX = {"fp8": 448.0, "fp8_ue8m0": 448.0, "int8": 127.0}


def random_input(shape, dtype, seed):
    """Normal values whose magnitude changes every 16 elements (the smallest group), by
    factors from 2^-12 to 2^12, so that neighbouring groups get very different scales. The
    range stays inside fp16's."""
    gen = torch.Generator().manual_seed(seed)
    *lead, k = shape
    x = torch.randn(*shape, generator=gen)
    exponents = torch.randint(-12, 13, (*lead, k // 16), generator=gen).float()
    return (x * torch.exp2(exponents).repeat_interleave(16, dim=-1)).to(dtype)


def per_element(s, group_size):
    """Each group's scale repeated over its elements."""
    return s.repeat_interleave(group_size, dim=-1)


def assert_same_bits(a, b):
    """Equal dtypes, shapes and bit patterns (so NaN == NaN and -0 != +0)."""
    assert a.dtype == b.dtype and a.shape == b.shape
    as_int = {1: torch.uint8, 2: torch.int16, 4: torch.int32}[a.element_size()]
    assert torch.equal(a.view(as_int), b.view(as_int))


@pytest.mark.parametrize("dtype", INPUT_DTYPES)
@pytest.mark.parametrize("use_ue8m0", [False, True])
def test_fp8_hand_computed(dtype, use_ue8m0):
    # Group 0: amax 7, so s = 7 / 448 = 2^-6 exactly (already a power of two) and
    # q = e4m3(64 x): round-to-nearest-even, subnormals (below 2^-6) and saturation at 448.
    group0 = [7, -3.5, 1, 0.5, 6.25 / 64, 6.75 / 64, -6.75 / 64, 0.1,
              2**-12, 3 * 2**-15, 2**-16, 2**-15, 0, 6.9, -6.9, -7]
    q0 = [448, -224, 64, 32, 6, 7, -7, 6.5,  # 6.25 ties to even 6, 6.75 to 7; 6.4 -> 6.5
          2**-6, 3 * 2**-9, 0, 2**-9, 0, 448, -448, -448]  # 2^-10 ties to 0; 441.6 -> 448
    # Group 1: amax 4, s = 4 / 448 rounded to fp32; q = e4m3(x / s), x / s ~= 112 x, far from
    # any rounding tie. With UE8M0, s rounds up to 2^-6 and q = 64 x exactly.
    group1 = [4, -2, 1, 0.5, 2.5, -0.25, 0.125, 1.75] + [0] * 8
    if use_ue8m0:
        s1, q1 = 2**-6, [256, -128, 64, 32, 160, -16, 8, 112] + [0] * 8
    else:
        s1, q1 = torch.tensor(4 / 448).item(), [448, -224, 112, 56, 288, -28, 14, 192] + [0] * 8
    x = torch.tensor([group0 + group1], dtype=dtype)

    q, s = ref.per_token_group_quant_fp8(x, 16, use_ue8m0=use_ue8m0)

    assert q.dtype == FP8 and s.dtype == torch.float32
    assert s.tolist() == [[2**-6, s1]]
    assert q.float().tolist() == [q0 + q1]


@pytest.mark.parametrize("dtype", INPUT_DTYPES)
def test_int8_hand_computed(dtype):
    # Group 0: amax 127/64, so s = 2^-6 exactly and q = round_half_even(64 x).
    group0 = [127 / 64, -127 / 64, 2.5 / 64, 3.5 / 64, -2.5 / 64, 0.5 / 64, 1.5 / 64, -1.5 / 64,
              0.75 / 64, 63.75 / 64, 100 / 64, 0, 0, 0, 0, 0]
    q0 = [127, -127, 2, 4, -2, 0, 2, -2, 1, 64, 100, 0, 0, 0, 0, 0]
    # Group 1: amax 1, s = 1 / 127 rounded to fp32; x / s ~= 127 x, far from any tie (also
    # for the bf16 roundings of 0.1 and -0.3).
    group1 = [1, -1, 0.25, 0.1, -0.3] + [0] * 11
    q1 = [127, -127, 32, 13, -38] + [0] * 11
    x = torch.tensor([group0 + group1], dtype=dtype)

    q, s = ref.per_token_group_quant_int8(x, 16)

    assert q.dtype == torch.int8 and s.dtype == torch.float32
    assert s.tolist() == [[2**-6, torch.tensor(1 / 127).item()]]
    assert q.tolist() == [q0 + q1]


def test_ceil_pow2():
    s = torch.tensor([1.0, 1.5, 0.75, 3.0, 2**-20, 2**-20 * (1 + 2**-23), 2**100 * 1.01, INF, NAN])
    expected = torch.tensor([1.0, 2.0, 1.0, 4.0, 2**-20, 2**-19, 2**101, INF, NAN])
    assert_same_bits(ref.ceil_pow2(s), expected)


@pytest.mark.parametrize("group_size", SUPPORTED_GROUP_SIZES)
def test_ue8m0_scales_are_the_next_power_of_two(group_size, seed):
    x = random_input((9, 4 * 256), torch.float32, seed)
    _, plain = ref.per_token_group_quant_fp8(x, group_size)
    _, ue8m0 = ref.per_token_group_quant_fp8(x, group_size, use_ue8m0=True)
    assert torch.all(ue8m0.view(torch.int32) & 0x007FFFFF == 0), "mantissa bits must be zero"
    assert torch.all(ue8m0 >= plain) and torch.all(ue8m0 < 2 * plain)


@pytest.mark.parametrize("quantizer", QUANTIZERS)
@pytest.mark.parametrize("dtype", INPUT_DTYPES)
@pytest.mark.parametrize("group_size", [16, 128])
def test_dequantization_error_bound(quantizer, dtype, group_size, seed):
    x = random_input((17, 512), dtype, seed)
    q, s = QUANTIZERS[quantizer](x, group_size)
    x64 = x.double()
    s64 = per_element(s, group_size).double()
    err = (q.double() * s64 - x64).abs()  # exact in float64
    # The quotient v = fl(x / s) differs from x / s by at most 2^-24 |v|, with |v| <= 448
    # (127) up to that rounding; clamping to +-448 never moves v by more than that either.
    # So |q s - x| <= s |q - v| + 2^-24 |x| (1 + 2^-24).
    if quantizer == "int8":
        # round() moves v by at most 1/2, and 2^-24 |x| <= 2^-24 * 128 s.
        bound = s64 * (0.5 + 2.0**-17)
    else:
        # e4m3 keeps 3 mantissa bits: rounding moves a normal v by at most half a step, 2^-4
        # times its binade's start, so <= 2^-4 |v|; a subnormal one (|v| < 2^-6) by at most
        # half the subnormal step 2^-9. With s |v| <= |x| (1 + 2^-24):
        # |q s - x| <= 2^-4 |x| + 2^-10 s + 2^-23 |x| (the two 2^-24 terms, generously).
        bound = (2.0**-4 + 2.0**-23) * x64.abs() + 2.0**-10 * s64
    assert torch.all(err <= bound), f"max excess {(err - bound).max().item()}"


def strides_that_matter(t):
    """t's strides, None for dims of size 1 (whose stride is arbitrary and never used)."""
    return tuple(st if n > 1 else None for n, st in zip(t.shape, t.stride()))


@pytest.mark.parametrize(
    "shape, column_major, tma_aligned, s_shape, s_stride",
    [
        ((5, 256), False, False, (5, 2), (2, 1)),
        ((5, 256), True, False, (5, 2), (1, 5)),
        ((5, 256), True, True, (5, 2), (1, 8)),
        ((8, 256), True, True, (8, 2), (1, 8)),
        ((1, 256), True, True, (1, 2), (None, 4)),
        ((256,), False, False, (2,), (1,)),
        ((256,), True, True, (2,), (4,)),
        ((2, 3, 256), False, False, (2, 3, 2), (6, 2, 1)),
        ((2, 3, 256), True, False, (2, 3, 2), (3, 1, 6)),
        ((2, 3, 256), True, True, (2, 3, 2), (3, 1, 8)),
    ],
)
def test_scale_layout(shape, column_major, tma_aligned, s_shape, s_stride, seed):
    x = random_input(shape, torch.bfloat16, seed)
    q, s = ref.per_token_group_quant_fp8(
        x, 128, column_major_scales=column_major, tma_aligned_scales=tma_aligned
    )
    assert q.shape == x.shape and q.is_contiguous()
    assert (tuple(s.shape), strides_that_matter(s)) == (s_shape, s_stride)
    # The layout changes where the scales live, not their values; and leading dims only
    # name the rows of the (M, K) problem.
    q_rows, s_rows = ref.per_token_group_quant_fp8(x.reshape(-1, shape[-1]), 128)
    assert_same_bits(q.reshape(q_rows.shape), q_rows)
    assert_same_bits(s.reshape(s_rows.shape), s_rows)


def slice_of_wider(x, offset, extra):
    """A view of x's values inside a wider (..., K + extra) buffer, starting at column offset."""
    k = x.shape[-1]
    wide = torch.full((*x.shape[:-1], k + extra), NAN, dtype=x.dtype)
    wide[..., offset : offset + k] = x
    return wide[..., offset : offset + k]


@pytest.mark.parametrize("quantizer", QUANTIZERS)
@pytest.mark.parametrize(
    "shape, offset, extra", [((6, 256), 0, 64), ((6, 256), 1, 3), ((2, 3, 256), 5, 16)]
)
def test_strided_rows_match_contiguous_copy(quantizer, shape, offset, extra, seed):
    x = random_input(shape, torch.bfloat16, seed)
    x_strided = slice_of_wider(x, offset, extra)
    assert not x_strided.is_contiguous()
    q, s = QUANTIZERS[quantizer](x_strided, 64)
    q_expected, s_expected = QUANTIZERS[quantizer](x, 64)
    assert_same_bits(q, q_expected)
    assert_same_bits(s, s_expected)


@pytest.mark.parametrize("quantizer", QUANTIZERS)
def test_nan_and_inf(quantizer, seed):
    g = 16
    x = random_input((1, 4 * g), torch.float32, seed)
    # Group 0 stays finite; 1 gets a NaN; 2 gets +Inf and -Inf; 3 gets both a NaN and an Inf.
    x[0, g + 3] = NAN
    x[0, 2 * g + 1], x[0, 2 * g + 9] = INF, -INF
    x[0, 3 * g + 2], x[0, 3 * g + 5] = INF, NAN
    q, s = QUANTIZERS[quantizer](x, g)
    q, s = q.reshape(4, g), s.reshape(4)
    is_fp8 = quantizer != "int8"

    assert torch.isfinite(s[0]) and s[0] > 0
    assert torch.isnan(s[1]) and torch.isnan(s[3])
    assert s[2].item() == INF
    for nan_group in (q[1], q[3]):
        assert torch.all(nan_group.float().isnan()) if is_fp8 else torch.all(nan_group == 0)
    is_inf = torch.isinf(x.reshape(4, g)[2])
    inf_group = q[2].float()
    assert torch.all(inf_group[~is_inf] == 0)  # finite / Inf = +-0
    assert torch.all(inf_group[is_inf].isnan()) if is_fp8 else torch.all(inf_group[is_inf] == 0)


def expected_scale(quantizer, amax):
    """The spec's scale of a group whose (eps-floored) amax is given, in fp32."""
    s = torch.tensor(amax, dtype=torch.float32) / torch.tensor(QMAX[quantizer])
    return (ref.ceil_pow2(s) if quantizer == "fp8_ue8m0" else s).item()


@pytest.mark.parametrize("quantizer", QUANTIZERS)
@pytest.mark.parametrize("eps", [1e-10, 1e-3])
def test_eps_floors_amax(quantizer, eps, seed):
    g = 16
    x = random_input((1, 3 * g), torch.float32, seed)
    x[0, :g] = 0  # all zero: amax 0 -> eps
    x[0, g : 2 * g] = torch.linspace(-0.5, 0.5, g) * eps  # below eps: amax -> eps
    x[0, 2 * g] = 3.0  # above eps: amax is the group's own
    q, s = QUANTIZERS[quantizer](x, g, eps=eps)

    eps_scale = expected_scale(quantizer, eps)
    assert s[0, :2].tolist() == [eps_scale, eps_scale]
    assert torch.all(q[0, :g].float() == 0)
    assert s[0, 2].item() == expected_scale(quantizer, x[0, 2 * g :].abs().max().item())


@pytest.mark.parametrize("quantizer", QUANTIZERS)
@pytest.mark.parametrize("column_major", [False, True])
@pytest.mark.parametrize("shape", [(0, 256), (0, 3, 256), (4, 0)])
def test_empty_input(quantizer, column_major, shape):
    layout = {} if quantizer == "int8" else {"column_major_scales": column_major}
    q, s = QUANTIZERS[quantizer](torch.empty(shape, dtype=torch.bfloat16), 128, **layout)
    assert q.shape == shape and s.shape == (*shape[:-1], shape[-1] // 128)
    assert q.numel() == 0 and s.numel() == 0


@pytest.mark.parametrize("quantizer", QUANTIZERS)
def test_input_dtype_does_not_change_the_result(quantizer, seed):
    # Multiples of 2^-6 up to 4 in magnitude are exact in bf16, fp16 and fp32.
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(-256, 257, (7, 512), generator=gen) / 64.0
    results = [QUANTIZERS[quantizer](x.to(dtype), 32) for dtype in INPUT_DTYPES]
    for q, s in results[1:]:
        assert_same_bits(q, results[0][0])
        assert_same_bits(s, results[0][1])


@pytest.mark.parametrize("quantizer", QUANTIZERS)
def test_out_q_is_filled_and_returned(quantizer, seed):
    x = random_input((3, 5, 128), torch.float16, seed)
    q_dtype = torch.int8 if quantizer == "int8" else FP8
    out_q = torch.full(x.shape, 77, dtype=torch.int8).view(q_dtype)
    q, s = QUANTIZERS[quantizer](x, 32, out_q=out_q)
    assert q is out_q
    q_fresh, s_fresh = QUANTIZERS[quantizer](x, 32)
    assert_same_bits(q, q_fresh)
    assert_same_bits(s, s_fresh)
