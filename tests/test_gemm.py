"""Tests of the INT8 scaled GEMM (qbench_ext.gemm.int8_scaled_mm) and its reference.

CPU tests: argument validation, the reference on hand-computed cases, the config table.
GPU tests (marked `gpu`, skipped without an sm90 GPU): random shapes against the exact
reference (to within one unit in the last place of the output dtype), every kernel
configuration, CUDA graphs, torch.compile, opcheck.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from qbench_ext import gemm, quant, reference_gemm

HAS_SM90 = torch.cuda.is_available() and torch.cuda.get_device_capability()[0] == 9
gpu = pytest.mark.gpu
needs_sm90 = pytest.mark.skipif(not HAS_SM90, reason="needs an sm90 (H100/H200) GPU")

OUT_DTYPES = (torch.bfloat16, torch.float16)


# --------------------------------------------------------------------------------------------
# Helpers


def ulp_of(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return reference_gemm.ulp(x, dtype)


def assert_matches_reference(out, exact, bias=None, max_off_by_one: float = 1e-3) -> None:
    """out equals the exact result (float64) rounded to out.dtype, up to one ulp (plus the fp32
    epilogue's rounding where a bias cancels the product; see compare_to_exact); and all but a
    tiny fraction of the elements (rounding ties of the fp32 epilogue, about 1e-4 of them for
    fp16) match exactly."""
    assert out.shape == exact.shape, (out.shape, exact.shape)
    result = reference_gemm.compare_to_exact(out, exact, bias)
    assert result["nan"] == 0, "NaN in the output (unwritten elements?)"
    assert result["beyond_one_ulp"] == 0, f"{result['beyond_one_ulp']} of {out.numel()} elements off by more than one ulp"
    n_off = result["frac_differ"] * out.numel()
    assert n_off <= max(2, max_off_by_one * out.numel()), f"{n_off:.0f} of {out.numel()} elements are one ulp off"


def make_inputs(m, n, k, *, per_token, per_channel, with_bias, out_dtype, device, seed=0, lead=None):
    g = torch.Generator(device=device).manual_seed(seed)
    a = torch.randint(-128, 128, (m, k), dtype=torch.int8, generator=g, device=device)
    w = torch.randint(-128, 128, (n, k), dtype=torch.int8, generator=g, device=device)
    sa = (torch.rand((m, 1) if per_token else (1, 1), generator=g, device=device) + 0.5) * 1e-3
    sb = (torch.rand((n,) if per_channel else (1,), generator=g, device=device) + 0.5) * 1e-3
    bias = (torch.randn(n, generator=g, device=device) * 4).to(out_dtype) if with_bias else None
    if lead is not None:
        a = a.reshape(*lead, k)
    return a, w.t(), sa, sb, bias  # b = w.t(): (K, N) column-major


VARIANTS = list(itertools.product((False, True), (False, True), (False, True), OUT_DTYPES))
# (per_token, per_channel, with_bias, out_dtype): 16 combinations


def run_and_check(m, n, k, variant, configs=(None,), seed=0):
    """Runs the dispatcher (config None) or forced configs on NaN-poisoned outputs and checks
    each against the exact reference. Returns the outputs."""
    per_token, per_channel, with_bias, out_dtype = variant
    a, b, sa, sb, bias = make_inputs(
        m, n, k, per_token=per_token, per_channel=per_channel, with_bias=with_bias, out_dtype=out_dtype,
        device="cuda", seed=seed,
    )
    exact = reference_gemm.int8_scaled_mm_exact(a, b, sa, sb, bias)
    outs = []
    for config in configs:
        out = torch.full((m, n), float("nan"), dtype=out_dtype, device="cuda")  # poisoned
        if config is None:
            res = gemm.int8_scaled_mm(a, b, sa, sb, out_dtype=out_dtype, bias=bias, out=out)
        else:
            res = gemm._int8_scaled_mm_config(a, b, sa, sb, config, out_dtype=out_dtype, bias=bias, out=out)
        assert res is out
        try:
            assert_matches_reference(out, exact, bias)
        except AssertionError as exc:
            raise AssertionError(f"config {config}: {exc}") from None
        outs.append(out)
    return outs


# --------------------------------------------------------------------------------------------
# CPU: the reference


def test_reference_hand_computed():
    a = torch.tensor([[1, 2, 3], [-4, 5, -6]], dtype=torch.int8)  # (M=2, K=3)
    w = torch.tensor([[1, 0, -1], [2, 2, 2]], dtype=torch.int8)  # (N=2, K=3)
    # a @ w.t() = [[1 - 3, 2 + 4 + 6], [-4 + 6, -8 + 10 - 12]] = [[-2, 12], [2, -10]]
    sa = torch.tensor([[0.5], [2.0]])
    sb = torch.tensor([1.0, 0.25])
    bias = torch.tensor([1.0, -1.0], dtype=torch.bfloat16)
    out = reference_gemm.int8_scaled_mm(a, w.t(), sa, sb, torch.bfloat16, bias)
    expected = torch.tensor([[-2 * 0.5 * 1 + 1, 12 * 0.5 * 0.25 - 1], [2 * 2 * 1 + 1, -10 * 2 * 0.25 - 1]])
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, expected.to(torch.bfloat16))  # [[0, 0.5], [5, -6]]
    # per-tensor scales, no bias, fp16
    out = reference_gemm.int8_scaled_mm(a, w.t(), torch.tensor(0.5), torch.tensor([3.0]), torch.float16)
    assert torch.equal(out, torch.tensor([[-3.0, 18.0], [3.0, -15.0]], dtype=torch.float16))


def test_reference_is_exact_for_large_sums():
    # 127 * 127 * 4096 = 66064384 > 2^24: float32 could not hold the sum exactly.
    k = 4096
    a = torch.full((1, k), 127, dtype=torch.int8)
    w = torch.full((1, k), 127, dtype=torch.int8)
    a[0, 0] = 126  # 66064384 - 127 = 66064257, odd: not representable in float32
    exact = reference_gemm.int8_scaled_mm_exact(a, w.t(), torch.ones(1), torch.ones(1))
    assert exact.dtype == torch.float64 and exact.item() == 66064257


def test_reference_keeps_leading_dims_and_rounds_once():
    a = torch.ones(2, 3, 16, dtype=torch.int8)
    w = torch.ones(32, 16, dtype=torch.int8)
    out = reference_gemm.int8_scaled_mm(a, w.t(), torch.full((6, 1), 1 / 3), torch.ones(1), torch.float16)
    assert out.shape == (2, 3, 32)
    # 16 / 3 in fp64, rounded once to fp16
    assert torch.equal(out, torch.full((2, 3, 32), 16 / 3, dtype=torch.float64).to(torch.float16))


def test_ulp_helper():
    x = torch.tensor([1.0, 1.5, 2.0, 0.0, -3.0], dtype=torch.bfloat16)
    assert ulp_of(x, torch.bfloat16).tolist() == [2**-7, 2**-7, 2**-6, 2**-133, 2**-6]
    x = torch.tensor([1.0, 65504.0, 2**-20], dtype=torch.float16)
    assert ulp_of(x, torch.float16).tolist() == [2**-10, 32.0, 2**-24]


def test_match_check_rejects_two_ulps():
    exact = torch.tensor([1.0, 2.0], dtype=torch.float64)
    good = torch.tensor([1.0 + 2**-7, 2.0], dtype=torch.bfloat16)
    assert_matches_reference(good, exact, max_off_by_one=1.0)
    bad = torch.tensor([1.0 + 2**-6, 2.0], dtype=torch.bfloat16)
    with pytest.raises(AssertionError, match="more than one ulp"):
        assert_matches_reference(bad, exact, max_off_by_one=1.0)


def test_compare_to_exact():
    exact = torch.tensor([1.0, 2.0, 2.0, 3.0], dtype=torch.float64)
    out = torch.tensor([1.0, 2.0 + 2**-6, 2.0 + 2**-5, float("nan")], dtype=torch.bfloat16)  # 0, 1, 2 ulps, NaN
    r = reference_gemm.compare_to_exact(out, exact)
    assert r == {"nan": 1, "beyond_one_ulp": 2, "frac_differ": 0.75}


# --------------------------------------------------------------------------------------------
# CPU: argument validation (the checks run before the GPU is needed)


def _args(m=4, n=32, k=64, **kw):
    a = torch.zeros(m, k, dtype=torch.int8)
    b = torch.zeros(n, k, dtype=torch.int8).t()
    args = dict(a=a, b=b, scale_a=torch.ones(1), scale_b=torch.ones(1))
    args.update(kw)
    return args


@pytest.mark.parametrize(
    "kw, error, message",
    [
        (dict(a=torch.zeros(4, 64, dtype=torch.uint8)), TypeError, "a must be int8"),
        (dict(a=torch.zeros(4, 64)), TypeError, "a must be int8"),
        (dict(b=torch.zeros(64, 32, dtype=torch.int16)), TypeError, "b must be int8"),
        (dict(scale_a=torch.ones(1, dtype=torch.float64)), TypeError, "scale_a must be float32"),
        (dict(scale_b=torch.ones(1, dtype=torch.bfloat16)), TypeError, "scale_b must be float32"),
        (dict(out_dtype=torch.float32), TypeError, "out_dtype must be"),
        (dict(a=[[1]]), TypeError, "a must be a torch.Tensor"),
        (dict(a=torch.zeros(64, dtype=torch.int8)), ValueError, "a must have at least 2 dims"),
        (dict(b=torch.zeros(2, 64, 32, dtype=torch.int8)), ValueError, "b must be 2-D"),
        (dict(b=torch.zeros(32, 48, dtype=torch.int8).t()), ValueError, "must equal b's first dim K"),
        (dict(a=torch.zeros(4, 40, dtype=torch.int8), b=torch.zeros(32, 40, dtype=torch.int8).t()),
         ValueError, "K and N must be multiples of 16"),
        (dict(b=torch.zeros(40, 64, dtype=torch.int8).t()), ValueError, "K and N must be multiples of 16"),
        (dict(a=torch.zeros(64, 4, dtype=torch.int8).t()), ValueError, "a must be row-major"),
        (dict(b=torch.zeros(64, 32, dtype=torch.int8)), ValueError, "b must be column-major"),
        (dict(b=torch.zeros(32, 72, dtype=torch.int8)[:, :64].t()), ValueError, "b's column stride"),
        (dict(scale_a=torch.ones(3)), ValueError, "scale_a must have 1 .* or M = 4"),
        (dict(scale_b=torch.ones(31)), ValueError, "scale_b must have 1 .* or N = 32"),
        (dict(bias=torch.zeros(32)), TypeError, "bias must have out_dtype"),
        (dict(bias=torch.zeros(16, dtype=torch.bfloat16)), ValueError, r"bias must have shape \(N,\)"),
        (dict(out=torch.zeros(4, 32, dtype=torch.float16)), TypeError, "out must have out_dtype"),
        (dict(out=torch.zeros(4, 16, dtype=torch.bfloat16)), ValueError, "out must have shape"),
        (dict(out=torch.zeros(32, 4, dtype=torch.bfloat16).t()), ValueError, "out must be contiguous"),
    ],
)
def test_validation_errors(kw, error, message):
    with pytest.raises(error, match=message):
        gemm.int8_scaled_mm(**_args(**kw))


def test_cpu_tensors_need_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="need a CUDA GPU"):
        gemm.int8_scaled_mm(**_args())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ValueError, match="a must be a CUDA tensor"):
        gemm.int8_scaled_mm(**_args())


def test_config_table():
    names = gemm.int8_scaled_mm_configs()
    assert len(names) >= 4 and len(set(names)) == len(names)
    assert all(n.startswith("sm90_") for n in names)
    for m in (1, 7, 16, 17, 33, 64, 65, 100, 128, 129, 256, 257, 1000, 4096, 100000):
        for n, k in ((16, 16), (4096, 4096), (28672, 4096), (4096, 14336)):
            assert 0 <= gemm.int8_scaled_mm_pick_config(m, n, k) < len(names)
    # Decode sizes take the hand-written kernel; up to 64 tokens fit one 64-row tile, narrower
    # on narrower weights, except on wide weights: swapped stream-K tiles, 128x32 up to 32
    # tokens, and on the widest weights (up to K = 8192) 128x16 up to 32 and 128x32 up to 64.
    expected = [
        (1, 4096, 4096, "decode"), (16, 28672, 4096, "decode"),
        (17, 4096, 4096, "64x32x256"), (64, 6144, 4096, "64x48x256"), (64, 8192, 4096, "64x64x256"),
        (17, 8192, 8192, "64x64x256"), (64, 28672, 4096, "swap_128x64x128"),
        (17, 14336, 4096, "swap_128x32x128"), (32, 28672, 4096, "swap_128x32x128"),
        (33, 28672, 4096, "swap_128x64x128"), (32, 57344, 8192, "swap_128x16x128"),
        (33, 57344, 8192, "swap_128x32x128"), (64, 57344, 8192, "swap_128x32x128"),
        (32, 106496, 16384, "swap_128x32x128"), (64, 106496, 16384, "swap_128x64x128"),
    ]
    for m, n, k, config in expected:
        assert config in names[gemm.int8_scaled_mm_pick_config(m, n, k)], (m, n, k)
    # Large M: 128x128 pingpong (on wide weights in a swizzled tile order).
    for n in (4096, 28672):
        assert "128x128x128_c2x1_pingpong" in names[gemm.int8_scaled_mm_pick_config(16384, n, 4096)]
    # 256 < M <= 2176: an odd count of 128-row blocks (which the pingpong's clusters of two would
    # pad) takes the unclustered stream-K tiles, an even count the pingpong tiles.
    for n in (4096, 6144, 28672):
        for m in (257, 384, 513, 640, 832, 1025, 2049, 2176):
            assert names[gemm.int8_scaled_mm_pick_config(m, n, 4096)] == "sm90_128x128x128_c1x1_coop_sk", (m, n)
        for m in (385, 512, 768, 1024, 2048, 2177, 2305, 4097):
            assert names[gemm.int8_scaled_mm_pick_config(m, n, 4096)] == "sm90_128x128x128_c2x1_pingpong", (m, n)


def test_compact_activation_copy_rule():
    """The dispatcher copies a compact activation into memory of whole tiles where less than
    half of its last tile's activation box lies inside (a tenth for the swapped tiles) and
    M K <= 2^24; never where its memory already holds the whole tile, nor for decode."""
    copies = gemm.int8_scaled_mm_copies_activation
    names = gemm.int8_scaled_mm_configs()
    assert names[gemm.int8_scaled_mm_pick_config(257, 28672, 4096)] == "sm90_128x128x128_c1x1_coop_sk"
    assert copies(257, 28672, 4096, 257)  # 1 of 128 rows inside
    assert copies(257, 28672, 4096, 383)
    assert not copies(257, 28672, 4096, 384)  # the memory holds the whole tile
    assert copies(300, 4096, 4096, 300)  # 44 of 128
    assert not copies(320, 4096, 4096, 320)  # half
    assert not copies(384, 4096, 4096, 384)  # no partial tile
    assert copies(2049, 4096, 8176, 2049) and not copies(2049, 4096, 8192, 2049)  # M K <= 2^24
    assert not copies(4097, 4096, 4096, 4097)
    assert "64x32x256" in names[gemm.int8_scaled_mm_pick_config(17, 4096, 4096)]
    assert copies(17, 4096, 4096, 17) and copies(31, 4096, 4096, 31) and not copies(32, 4096, 4096, 32)
    assert "swap_128x64x128" in names[gemm.int8_scaled_mm_pick_config(129, 4096, 4096)]
    assert copies(129, 4096, 4096, 129)  # 1 of 64
    assert copies(198, 4096, 4096, 198) and not copies(199, 4096, 4096, 199)  # 6 of 64 < a tenth < 7
    for m in (1, 7, 16):  # the decode kernel reads a without TMA
        assert not copies(m, 4096, 4096, m)
    with pytest.raises(ValueError, match="rows_readable >= M"):
        copies(257, 4096, 4096, 100)


# --------------------------------------------------------------------------------------------
# GPU

GPU_MS = (1, 7, 16, 33, 64, 100, 128, 256, 1000, 4096)
GPU_NKS = ((16, 16), (208, 48), (128, 4096), (6144, 128), (4096, 14336))


@gpu
@needs_sm90
@pytest.mark.parametrize("n, k", GPU_NKS)
@pytest.mark.parametrize("m", GPU_MS)
def test_gpu_random_shapes(m, n, k):
    # Two of the 16 (scales, bias, dtype) variants per shape, rotating so that every variant
    # meets every M and (N, K) column.
    i = GPU_MS.index(m) + 3 * GPU_NKS.index((n, k))
    for j in (i % 16, (i + 8) % 16):
        run_and_check(m, n, k, VARIANTS[j], seed=1000 * m + n + k + j)


@gpu
@needs_sm90
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: str(v))
@pytest.mark.parametrize("m, n, k", [(33, 208, 48), (1000, 1040, 1008)])
def test_gpu_all_variants(m, n, k, variant):
    run_and_check(m, n, k, variant)


@gpu
@needs_sm90
@pytest.mark.parametrize("m, n, k", [(1, 4096, 4096), (7, 208, 48), (100, 6144, 128), (300, 1040, 1008),
                                     (4096, 4096, 14336)])
def test_gpu_every_config_matches(m, n, k):
    """Each configuration of the table, forced, on shapes of every bucket: correct, and
    bit-identical to each other (same int32 sums, same fp32 epilogue)."""
    variant = (True, True, True, torch.bfloat16)
    outs = run_and_check(m, n, k, variant, configs=range(len(gemm.int8_scaled_mm_configs())))
    for c, o in enumerate(outs[1:], 1):
        assert torch.equal(o, outs[0]), f"config {c} differs from config 0"


@gpu
@needs_sm90
@pytest.mark.parametrize("m", (7, 100, 257, 300))
def test_gpu_activation_rows_past_m(m):
    """An activation inside a larger buffer (rows past M of random values, row stride past K):
    the CUTLASS configurations then load whole tiles from it (widen_activation_box in
    csrc/gemm/int8_scaled_mm_sm90.cuh). Every configuration stays exact and equal to its result
    on a compact copy, and writes no row of the poisoned output buffer past M."""
    n, k = 1040, 1008
    variant = (True, True, True, torch.bfloat16)
    a, b, sa, sb, bias = make_inputs(m, n, k, per_token=True, per_channel=True, with_bias=True,
                                     out_dtype=torch.bfloat16, device="cuda", seed=m)
    exact = reference_gemm.int8_scaled_mm_exact(a, b, sa, sb, bias)
    rows = gemm.whole_tile_rows(m)
    a_buffer = torch.randint(-128, 128, (rows, k + 16), dtype=torch.int8, device="cuda")
    a_buffer[:m, :k] = a
    compact = run_and_check(m, n, k, variant, configs=range(len(gemm.int8_scaled_mm_configs())), seed=m)
    for config, expected in enumerate(compact):
        buffer = torch.full((rows, n), float("nan"), dtype=torch.bfloat16, device="cuda")
        out = gemm._int8_scaled_mm_config(a_buffer[:m, :k], b, sa, sb, config, torch.bfloat16, bias, out=buffer[:m])
        assert_matches_reference(out, exact, bias)
        assert torch.equal(out, expected), f"config {config}: differs from its result on a compact a"
        assert torch.isnan(buffer[m:]).all(), f"config {config} wrote rows past M"


@gpu
@needs_sm90
@pytest.mark.parametrize("m", [17, 129, 257, 300])
def test_gpu_compact_activation_copied(m):
    """A compact activation that the dispatcher copies into whole-tile memory first: the result
    is exact and bit-identical to the same configuration forced on the compact a (which runs on
    it as given) and to the dispatcher on a view of whole-tile memory; a is left as it was."""
    n, k = 1040, 1008
    assert gemm.int8_scaled_mm_copies_activation(m, n, k, m)
    pick = gemm.int8_scaled_mm_pick_config(m, n, k)
    a, b, sa, sb, bias = make_inputs(m, n, k, per_token=True, per_channel=True, with_bias=True,
                                     out_dtype=torch.float16, device="cuda", seed=m)
    a_before = a.clone()
    exact = reference_gemm.int8_scaled_mm_exact(a, b, sa, sb, bias)
    whole = torch.randint(-128, 128, (gemm.whole_tile_rows(m), k), dtype=torch.int8, device="cuda")[:m]
    whole.copy_(a)
    outs = []
    for run in (lambda out: gemm.int8_scaled_mm(a, b, sa, sb, torch.float16, bias, out=out),
                lambda out: gemm._int8_scaled_mm_config(a, b, sa, sb, pick, torch.float16, bias, out=out),
                lambda out: gemm.int8_scaled_mm(whole, b, sa, sb, torch.float16, bias, out=out)):
        out = torch.full((m, n), float("nan"), dtype=torch.float16, device="cuda")
        run(out)
        assert_matches_reference(out, exact, bias)
        outs.append(out)
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
    assert torch.equal(a, a_before)


# The hand-written decode configuration (csrc/gemm/int8_scaled_mm_decode.cu), forced on the
# edges of its tiling: 16 weight rows x 16 tokens a CTA, K in 16-byte pieces, 64-byte chunks,
# 2048-byte stages split over 8 warps (and the other forms where the launcher picks them:
# test_gpu_decode_other_forms).
DECODE_CONFIG = 8
DECODE_MS = (1, 2, 7, 15, 16, 17, 33)  # one token, one n8 tile, two, two CTAs along M, three
# K: one piece (16); a partial chunk (48); one piece past two stages, for warp 0 (4112) and for
# warp 1 (2320 = 2048 + 256 + 16). N: one CTA (16), three (48), 13 (208).
DECODE_NKS = ((16, 16), (48, 48), (16, 4112), (48, 2320), (208, 4096))


@gpu
@needs_sm90
def test_gpu_decode_config_index():
    assert gemm.int8_scaled_mm_configs()[DECODE_CONFIG] == "sm90_decode_mma_16x16_ksplit8"


@gpu
@needs_sm90
@pytest.mark.parametrize("n, k", DECODE_NKS)
@pytest.mark.parametrize("m", DECODE_MS)
def test_gpu_decode_config_edges(m, n, k):
    """Every (scales, bias, dtype) variant: exact, and bit-identical to the CUTLASS swap-AB
    configuration that decode shapes use today."""
    cutlass_config = gemm.int8_scaled_mm_configs().index("sm90_swap_128x16x128_c1x1_coop_sk")
    for j, variant in enumerate(VARIANTS):
        cutlass_out, decode_out = run_and_check(m, n, k, variant, configs=(cutlass_config, DECODE_CONFIG),
                                                seed=1000 * m + n + k + j)
        assert torch.equal(decode_out, cutlass_out), f"variant {variant}: not bit-identical to CUTLASS"


@gpu
@needs_sm90
@pytest.mark.parametrize("k", (16, 1040, 1552, 4080))
@pytest.mark.parametrize("m", (1, 9, 16))
@pytest.mark.parametrize("slots_per_sm", (2, 3, 4, 6),
                         ids=("16-rows-3-ctas-an-sm", "32-rows", "32-rows-3-ctas-an-sm", "16-rows-two-rounds"))
def test_gpu_decode_other_forms(slots_per_sm, m, k):
    """N / 16 = slots_per_sm * SMs + 1 CTAs of 16 rows, which the launcher (launch_decode) puts
    in the first form whose CTAs all fit the GPU at once: at 2, 16-row CTAs at 3 an SM (96 weight
    bytes a lane, 1536-byte stages); at 3, 32-row CTAs at 2 (1024-byte stages); at 4, 32-row CTAs
    at 3 (512-byte stages, up to K = 4096); at 6 none fits, so 16-row CTAs at 2 in two rounds.
    With 32 rows the last CTA is half past N. K: one piece, one piece past 1024 bytes, past a
    1536-byte stage, and 16 bytes short of 4096 (a partial last stage in every form). Exact on a
    NaN-poisoned output (so no element up to N is left unwritten), bit-identical to the CUTLASS
    swap-AB configuration."""
    n = 16 * (slots_per_sm * torch.cuda.get_device_properties(0).multi_processor_count + 1)
    cutlass_config = gemm.int8_scaled_mm_configs().index("sm90_swap_128x16x128_c1x1_coop_sk")
    for j in (0, 7, 13):
        cutlass_out, decode_out = run_and_check(m, n, k, VARIANTS[j], configs=(cutlass_config, DECODE_CONFIG),
                                                seed=1000 * m + k + j)
        assert torch.equal(decode_out, cutlass_out), f"variant {VARIANTS[j]}: not bit-identical to CUTLASS"


@gpu
@needs_sm90
def test_gpu_decode_config_loops_token_tiles():
    """More token tiles than the grid's y holds (65535): CTAs take tiles y, y + 65535, ..."""
    m, n, k = 16 * 65535 + 17, 32, 64
    run_and_check(m, n, k, (True, True, True, torch.bfloat16), configs=(DECODE_CONFIG,))


@gpu
@needs_sm90
@pytest.mark.parametrize("out_dtype", OUT_DTYPES)
@pytest.mark.parametrize("m", (1, 7, 17))
def test_gpu_decode_config_strides_and_bounds(m, out_dtype):
    """Row strides past K for a and b, whose padding holds values that must not enter the sums;
    an output inside a larger poisoned buffer, of which nothing past row M may be written."""
    n, k = 48, 4112
    a, b, sa, sb, bias = make_inputs(m, n, k, per_token=True, per_channel=True, with_bias=True,
                                     out_dtype=out_dtype, device="cuda")
    a_wide = torch.full((m, k + 48), 77, dtype=torch.int8, device="cuda")
    a_wide[:, :k] = a
    w_wide = torch.full((n, k + 32), -99, dtype=torch.int8, device="cuda")
    w_wide[:, :k] = b.t()
    buffer = torch.full((m + 16, n), float("nan"), dtype=out_dtype, device="cuda")
    out = gemm._int8_scaled_mm_config(a_wide[:, :k], w_wide[:, :k].t(), sa, sb, DECODE_CONFIG, out_dtype, bias,
                                      out=buffer[:m])
    assert_matches_reference(out, reference_gemm.int8_scaled_mm_exact(a, b, sa, sb, bias), bias)
    assert torch.equal(out, gemm._int8_scaled_mm_config(a, b, sa, sb, DECODE_CONFIG, out_dtype, bias))
    assert torch.isnan(buffer[m:]).all()


@gpu
@needs_sm90
@pytest.mark.parametrize("m", (1, 16))
def test_gpu_weight_just_written_by_a_pdl_kernel(m):
    """Every configuration, right after a PDL kernel of ours that writes its weight:
    per_token_group_quant_int8 or static_scaled_int8_quant, which let the GEMM start while they
    still run, quantise the weight into a poisoned buffer. The decode kernel reads its weight
    before its PDL wait unless the kernel before it is one of ours writing it
    (core/pdl_writes.h), as here; the CUTLASS kernels launched with PDL wait before their first
    load. A weight read too early would show the poison."""
    n, k = 4096, 4096
    g = torch.Generator(device="cuda").manual_seed(m)
    a = torch.randint(-128, 128, (m, k), dtype=torch.int8, generator=g, device="cuda")
    sa = (torch.rand((m, 1), generator=g, device="cuda") + 0.5) * 1e-3
    sb = (torch.rand((n,), generator=g, device="cuda") + 0.5) * 1e-3
    for config, name in enumerate(gemm.int8_scaled_mm_configs()):
        for trial in range(4):
            w = torch.randn((n, k), generator=g, device="cuda", dtype=torch.bfloat16)
            w_q = torch.full((n, k), 99, dtype=torch.int8, device="cuda")  # poison, written in full below
            if trial % 2:
                torch.ops.qbench_ext.static_scaled_int8_quant(w_q, w, w.abs().amax().float().reshape(1) / 127, None)
            else:
                quant.per_token_group_quant_int8(w, 128, out_q=w_q)
            out = gemm._int8_scaled_mm_config(a, w_q.t(), sa, sb, config, out_dtype=torch.bfloat16)
            torch.cuda.synchronize()
            assert (w_q != 99).any(dim=1).all()
            try:
                assert_matches_reference(out, reference_gemm.int8_scaled_mm_exact(a, w_q.t(), sa, sb, None), None)
            except AssertionError as exc:
                raise AssertionError(f"{name}, trial {trial}: {exc}") from None


@gpu
@needs_sm90
@pytest.mark.parametrize("m, n, k", [(4104, 16384, 32), (4104, 208, 48)])
def test_gpu_large_m_dispatch(m, n, k):
    """Past M = 4096 the dispatcher also sets CUTLASS's tile order (swizzle, raster) on wide
    weights: results must not depend on it."""
    run_and_check(m, n, k, (True, True, True, torch.bfloat16))


@gpu
@needs_sm90
@pytest.mark.parametrize("m, n, k, row_blocks", [
    (131200, 256, 16384, [(0, 128), (130944, 131200)]),  # a's elements past 2^31 from row 131072
    (65600, 32768, 64, [(0, 128), (65408, 65600)]),  # out's from row 65536
], ids=["activation", "output"])
def test_gpu_past_2_31_elements(m, n, k, row_blocks):
    """Element offsets past 2^31 in a or in out, where 32-bit offsets would wrap: no output
    element left unwritten (poisoned first), and row blocks at the start and across the
    boundary exact (a reference of the whole output would need M x N int64)."""
    a, b, sa, sb, bias = make_inputs(m, n, k, per_token=True, per_channel=True, with_bias=True,
                                     out_dtype=torch.bfloat16, device="cuda", seed=3)
    out = torch.full((m, n), float("nan"), dtype=torch.bfloat16, device="cuda")
    gemm.int8_scaled_mm(a, b, sa, sb, out_dtype=torch.bfloat16, bias=bias, out=out)
    assert not out.isnan().any(), "NaN in the output (unwritten elements?)"
    for lo, hi in row_blocks:
        exact = reference_gemm.int8_scaled_mm_exact(a[lo:hi], b, sa[lo:hi], sb, bias)
        assert_matches_reference(out[lo:hi], exact, bias)


@gpu
@needs_sm90
def test_gpu_leading_dims_and_empty():
    a, b, sa, sb, bias = make_inputs(6, 32, 64, per_token=True, per_channel=True, with_bias=True,
                                     out_dtype=torch.bfloat16, device="cuda", lead=(2, 3))
    out = gemm.int8_scaled_mm(a, b, sa, sb, torch.bfloat16, bias)
    assert out.shape == (2, 3, 32)
    assert_matches_reference(out, reference_gemm.int8_scaled_mm_exact(a, b, sa, sb, bias), bias)
    empty = gemm.int8_scaled_mm(a[:0], b, sa[:0], sb, torch.float16)
    assert empty.shape == (0, 3, 32) and empty.dtype == torch.float16
    # K = 0: an empty sum, out = bias
    a0 = torch.zeros(5, 0, dtype=torch.int8, device="cuda")
    b0 = torch.zeros(32, 0, dtype=torch.int8, device="cuda").t()
    out = gemm.int8_scaled_mm(a0, b0, torch.ones(1, device="cuda"), torch.ones(1, device="cuda"),
                              torch.bfloat16, bias)
    assert torch.equal(out, bias.expand(5, 32))


@gpu
@needs_sm90
def test_gpu_strided_rows_and_misalignment():
    a, b, sa, sb, _ = make_inputs(64, 128, 256, per_token=True, per_channel=False, with_bias=False,
                                  out_dtype=torch.bfloat16, device="cuda")
    wide = torch.zeros(64, 320, dtype=torch.int8, device="cuda")
    wide[:, :256] = a
    out = gemm.int8_scaled_mm(wide[:, :256], b, sa, sb)  # row stride 320
    assert torch.equal(out, gemm.int8_scaled_mm(a, b, sa, sb))
    misaligned = wide.view(-1)[1 : 1 + 64 * 256].view(64, 256)  # data pointer 1 byte off
    with pytest.raises(ValueError, match="a must be 16-byte aligned"):
        gemm.int8_scaled_mm(misaligned, b, sa, sb)
    # The C++ op checks too (direct torch.ops calls skip the Python checks).
    out = torch.empty(64, 128, dtype=torch.bfloat16, device="cuda")
    with pytest.raises(ValueError, match="column-major"):
        torch.ops.qbench_ext.int8_scaled_mm(out, a, b.t().contiguous().t().contiguous(), sa, sb, None)
    with pytest.raises(ValueError, match="multiples of 16"):
        torch.ops.qbench_ext.int8_scaled_mm(out[:, :120], a[:, :120], b[:120, :120], sa, sb[:1], None)


@gpu
@needs_sm90
@pytest.mark.parametrize("m", [1, 48, 257, 512])  # 257: the op copies a (test_compact_activation_copy_rule)
def test_gpu_cuda_graph(m):
    a, b, sa, sb, bias = make_inputs(m, 4096, 4096, per_token=True, per_channel=True, with_bias=True,
                                     out_dtype=torch.bfloat16, device="cuda")
    expected = gemm.int8_scaled_mm(a, b, sa, sb, torch.bfloat16, bias)
    out = torch.full_like(expected, float("nan"))
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):  # warm-up outside the capture
        gemm.int8_scaled_mm(a, b, sa, sb, torch.bfloat16, bias, out=out)
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    out.fill_(float("nan"))
    with torch.cuda.graph(graph):
        gemm.int8_scaled_mm(a, b, sa, sb, torch.bfloat16, bias, out=out)
    for _ in range(2):
        out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(out, expected)


@gpu
@needs_sm90
def test_gpu_torch_compile():
    a, b, sa, sb, bias = make_inputs(100, 256, 512, per_token=True, per_channel=True, with_bias=True,
                                     out_dtype=torch.float16, device="cuda")

    def f(a, b, sa, sb, bias):
        return gemm.int8_scaled_mm(a, b, sa, sb, torch.float16, bias) * 2

    compiled = torch.compile(f, fullgraph=True)
    assert torch.equal(compiled(a, b, sa, sb, bias), f(a, b, sa, sb, bias))


@gpu
@needs_sm90
def test_gpu_opcheck():
    a, b, sa, sb, bias = make_inputs(33, 256, 512, per_token=True, per_channel=False, with_bias=True,
                                     out_dtype=torch.bfloat16, device="cuda")
    out = torch.empty(33, 256, dtype=torch.bfloat16, device="cuda")
    torch.library.opcheck(torch.ops.qbench_ext.int8_scaled_mm.default, (out, a, b, sa.reshape(-1), sb, bias))
    torch.library.opcheck(torch.ops.qbench_ext.int8_scaled_mm_config.default,
                          (out, a, b, sa.reshape(-1), sb, None, 0))
