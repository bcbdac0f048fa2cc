"""The CUDA kernels (qbench_ext) and the Triton kernels (qbench_ext.triton_ref) against the
PyTorch reference run on the same GPU: bit-exact, for every input dtype, group size and
option, over many shapes, strides and value patterns. Also: 64-bit indexing, CUDA graphs,
torch.compile and the op's registration (opcheck). Run with `pytest -m gpu`."""

import pytest
import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

import qbench_ext
import qbench_ext.triton_ref
from qbench_ext import reference
from qbench_ext._group_quant_args import INPUT_DTYPES, SUPPORTED_GROUP_SIZES

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("cuda")]

FP8 = torch.float8_e4m3fn
IMPLEMENTATIONS = [pytest.param(qbench_ext, id="cuda"), pytest.param(qbench_ext.triton_ref, id="triton")]

# Every valid option combination, by name: (quantizer, keyword arguments).
MODES = {
    "int8": ("int8", {}),
    "fp8": ("fp8", {}),
    "fp8-ue8m0": ("fp8", {"use_ue8m0": True}),
    "fp8-col": ("fp8", {"column_major_scales": True}),
    "fp8-col-ue8m0": ("fp8", {"column_major_scales": True, "use_ue8m0": True}),
    "fp8-tma": ("fp8", {"column_major_scales": True, "tma_aligned_scales": True}),
    "fp8-tma-ue8m0": ("fp8", {"column_major_scales": True, "tma_aligned_scales": True, "use_ue8m0": True}),
}
QMAX = {"fp8": 448.0, "int8": 127.0}
# Output fillers that the kernels never write: a negative NaN for FP8 (GPU arithmetic makes
# positive NaNs), an arbitrary byte for INT8, and a NaN with a payload for the scales.
Q_POISON = {FP8: 0xFF, torch.int8: 77}
SCALE_POISON = 0x7FBADBAD


def quantize(impl, mode, x, group_size, **kwargs):
    quantizer, options = MODES[mode]
    return getattr(impl, f"per_token_group_quant_{quantizer}")(x, group_size, **options, **kwargs)


def generator(seed):
    return torch.Generator(device="cuda").manual_seed(seed)


# --- Input values -------------------------------------------------------------------------


def random_values(shape, dtype, group_size, quantizer, gen):
    """Normal values whose magnitude jumps by powers of ten every 16 elements (the smallest
    group), so that scales differ from group to group; the eps floor is hit too (for fp32
    and bf16, magnitudes reach 1e-20)."""
    *lead, k = shape
    decades = (-5, 4) if dtype == torch.float16 else (-20, 21)
    exponents = torch.randint(*decades, (*lead, k // 16), generator=gen, device="cuda")
    magnitudes = torch.pow(10.0, exponents.float()).repeat_interleave(16, dim=-1)
    return (torch.randn(shape, generator=gen, device="cuda") * magnitudes).to(dtype)


def non_finite_values(shape, dtype, group_size, quantizer, gen):
    """Random values with about 1 in 50 elements replaced by NaN, +Inf or -Inf."""
    x = random_values(shape, dtype, group_size, quantizer, gen)
    hit = torch.rand(shape, generator=gen, device="cuda") < 0.02
    specials = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=dtype, device="cuda")
    pick = torch.randint(0, 3, shape, generator=gen, device="cuda")
    return torch.where(hit, specials[pick], x)


def exact_scale_values(shape, dtype, group_size, quantizer, gen):
    """Groups whose scale is exactly a power of two 2^e: one element is +-qmax 2^e (so x / s
    is exactly +-qmax: saturation), the others are quantization grid points and midpoints
    between neighbours, times 2^e (so x / s is exact, and every rounding tie shows)."""
    *lead, k = shape
    if quantizer == "fp8":
        grid = torch.arange(127, dtype=torch.uint8, device="cuda").view(FP8).float()  # 0 .. 448
        candidates = torch.cat([grid, (grid[1:] + grid[:-1]) / 2])
    else:
        candidates = torch.arange(255, device="cuda") / 2.0  # 0, 0.5, .., 127
    groups = (*lead, k // group_size)
    picks = torch.randint(0, len(candidates), (*groups, group_size), generator=gen, device="cuda")
    v = candidates[picks]
    at_amax = torch.randint(0, group_size, (*groups, 1), generator=gen, device="cuda")
    v.scatter_(-1, at_amax, QMAX[quantizer])
    signs = torch.randint(0, 2, v.shape, generator=gen, device="cuda") * 2.0 - 1.0
    # 2^-10 .. 2^5 keeps every value exact in fp16 (largest 448 * 32, smallest 2^-10 * 2^-10).
    scales = torch.exp2(torch.randint(-10, 6, (*groups, 1), generator=gen, device="cuda").float())
    return (v * signs * scales).reshape(shape).to(dtype)


VALUE_PATTERNS = [random_values, non_finite_values, exact_scale_values]


# --- Input layouts ------------------------------------------------------------------------

# (leading dims, groups per row, column offset in a wider buffer, extra columns of that
# buffer, byte offset of out_q in its buffer). An offset of 1 with an odd row pitch makes the
# rows misaligned, which sends the CUDA kernel down its scalar load / store path.
LAYOUTS = {
    "1xG": ((1,), 1, 0, 0, 0),
    "7x3G": ((7,), 3, 0, 0, 0),
    "33xK8192": ((33,), None, 0, 0, 0),  # None: K = 8192
    "1023x2G": ((1023,), 2, 0, 0, 0),
    "2x5x4G": ((2, 5), 4, 0, 0, 0),
    "5x2G-in-wider": ((5,), 2, 0, 64, 0),
    "3x3G-misaligned": ((3,), 3, 1, 3, 1),
    "2x3x2G-misaligned": ((2, 3), 2, 1, 1, 0),
}


def make_input(layout, values, dtype, group_size, quantizer, gen):
    """x with the given layout; the columns of the wider buffer outside x hold NaN, which
    would show in the scales if a kernel read them."""
    lead, groups, col_offset, extra_cols, _ = LAYOUTS[layout]
    k = 8192 if groups is None else groups * group_size
    wide = torch.full((*lead, k + extra_cols), float("nan"), dtype=dtype, device="cuda")
    x = wide[..., col_offset : col_offset + k]
    x.copy_(values((*lead, k), dtype, group_size, quantizer, gen))
    return x


def poisoned_out_q(shape, dtype, byte_offset=0):
    """A contiguous out_q of `shape`, byte_offset bytes into a buffer filled with poison."""
    numel = torch.Size(shape).numel()
    buffer = torch.full((numel + byte_offset,), Q_POISON[dtype], dtype=torch.uint8, device="cuda")
    return buffer[byte_offset:].view(dtype).view(shape)


def poison_a_freed_block(nbytes):
    """Fills a block of the caching allocator with SCALE_POISON and frees it: the next
    allocation of that size, the implementation's scales, is usually given this block, so
    scales that a kernel fails to write show up as poison (best effort: the API allocates
    the scales itself; test_op_writes_every_scale checks this deterministically)."""
    torch.full((nbytes // 4,), SCALE_POISON, dtype=torch.int32, device="cuda")


def assert_same_bits(got, expected, what):
    assert (got.dtype, got.shape) == (expected.dtype, expected.shape), what
    as_int = {1: torch.uint8, 4: torch.int32}[got.element_size()]
    differs = got.view(as_int) != expected.view(as_int)
    if differs.any():
        first = tuple(differs.nonzero()[0].tolist())
        pytest.fail(
            f"{what}: {int(differs.sum())} of {differs.numel()} differ; first at {first}: "
            f"got {got[first].float().item()!r}, expected {expected[first].float().item()!r}"
        )


def check_against_reference(impl, mode, x, group_size, what, out_q_byte_offset=0):
    """Runs impl into a poisoned out_q and compares q and s bit for bit with the reference."""
    q_ref, s_ref = quantize(reference, mode, x, group_size)
    out_q = poisoned_out_q(x.shape, q_ref.dtype, out_q_byte_offset)
    poison_a_freed_block(s_ref.untyped_storage().nbytes())
    q, s = quantize(impl, mode, x, group_size, out_q=out_q)
    assert q is out_q, what
    assert s.stride() == s_ref.stride(), what
    assert_same_bits(q, q_ref, f"{what}: q")
    assert_same_bits(s, s_ref, f"{what}: s")


# --- Bit-exactness over the option matrix ---------------------------------------------------


def dtype_name(dtype):
    return str(dtype).removeprefix("torch.")


def option_matrix():
    """Every (input dtype, group size, mode) for the CUDA kernels. Triton compiles a kernel per
    specialization (about a second each), so it gets every mode at G = 128 for every dtype,
    and every group size in plain FP8 and INT8 for bf16."""
    for dtype in INPUT_DTYPES:
        for group_size in SUPPORTED_GROUP_SIZES:
            for mode in MODES:
                case_id = f"{dtype_name(dtype)}-{group_size}-{mode}"
                yield pytest.param(qbench_ext, dtype, group_size, mode, id=f"cuda-{case_id}")
                if group_size == 128 or (dtype == torch.bfloat16 and mode in ("fp8", "int8")):
                    yield pytest.param(qbench_ext.triton_ref, dtype, group_size, mode, id=f"triton-{case_id}")


@pytest.mark.parametrize("impl, dtype, group_size, mode", list(option_matrix()))
def test_matches_reference(impl, dtype, group_size, mode, seed):
    gen = generator(seed)
    # Each new shape or stride pattern costs Triton a compile: it gets one layout per case
    # (picked by the case's seed, so all of them are covered across cases), CUDA all of them.
    layouts = list(LAYOUTS)
    if impl is qbench_ext.triton_ref:
        layouts = [layouts[seed % len(layouts)]]
    quantizer = MODES[mode][0]
    for layout in layouts:
        for values in VALUE_PATTERNS:
            x = make_input(layout, values, dtype, group_size, quantizer, gen)
            out_q_byte_offset = LAYOUTS[layout][4]
            what = f"{layout}/{values.__name__}"
            check_against_reference(impl, mode, x, group_size, what, out_q_byte_offset)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("mode", ["fp8-tma", "int8"])
def test_second_call_overwrites_every_output(impl, mode, seed):
    gen = generator(seed)
    first, second = (random_values((45, 1024), torch.bfloat16, 128, "fp8", gen) for _ in range(2))
    q_ref, s_ref = quantize(reference, mode, second, 128)
    out_q = poisoned_out_q(first.shape, q_ref.dtype)
    quantize(impl, mode, first, 128, out_q=out_q)
    q, s = quantize(impl, mode, second, 128, out_q=out_q)
    assert_same_bits(q, q_ref, "q")
    assert_same_bits(s, s_ref, "s")


@pytest.mark.parametrize(
    "s_shape, s_view",
    [
        pytest.param((37, 8), lambda s: s, id="row-major"),
        pytest.param((8, 37), lambda s: s.t(), id="column-major"),
        pytest.param((8, 40), lambda s: s[:, :37].t(), id="tma-aligned"),
    ],
)
@pytest.mark.parametrize("q_dtype", [FP8, torch.int8], ids=["fp8", "int8"])
def test_op_writes_every_scale(s_shape, s_view, q_dtype, seed):
    # Through torch.ops the caller owns the scales, so they can be poisoned for certain.
    x = random_values((37, 1024), torch.float32, 128, "fp8", generator(seed))
    q = poisoned_out_q(x.shape, q_dtype)
    s = s_view(torch.full(s_shape, SCALE_POISON, dtype=torch.int32, device="cuda").view(torch.float32))
    torch.ops.qbench_ext.per_token_group_quant(x, q, s, 128, 1e-10, False)
    mode = "fp8" if q_dtype == FP8 else "int8"
    q_ref, s_ref = quantize(reference, mode, x, 128)
    assert_same_bits(q, q_ref, "q")
    assert_same_bits(s, s_ref, "s")


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("mode", ["fp8-tma", "int8"])
@pytest.mark.parametrize("shape", [(0, 256), (0, 3, 256), (4, 0)])
def test_empty_input_launches_nothing(impl, mode, shape):
    x = torch.empty(shape, dtype=torch.bfloat16, device="cuda")
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        q, s = quantize(impl, mode, x, 128)
        torch.cuda.synchronize()
    assert q.shape == shape and s.shape == (*shape[:-1], shape[-1] // 128)
    assert not [e.name for e in prof.events() if e.device_type == DeviceType.CUDA]


# --- More than 2^31 elements -----------------------------------------------------------------

HUGE_K = 4096
HUGE_ROWS = 2**31 // HUGE_K + 3  # the last rows start past element 2^31
HUGE_CHUNK_ROWS = 2**16  # rows per reference call, to bound its fp32 temporaries


@pytest.fixture(scope="module")
def huge_input(cuda):
    free, _ = torch.cuda.mem_get_info()
    needed = 16 * 2**30  # x 4.3 GB, q 2.1 GB, the reference's temporaries ~5 GB per chunk
    if free < needed:
        pytest.skip(f"needs {needed / 2**30:.0f} GiB of free GPU memory, {free / 2**30:.1f} GiB free")
    gen = generator(2**31)
    x = torch.randn(HUGE_ROWS, HUGE_K, dtype=torch.bfloat16, device="cuda", generator=gen)
    decades = torch.randint(-3, 4, (HUGE_ROWS, 1), generator=gen, device="cuda")
    x *= torch.pow(10.0, decades.float()).bfloat16()  # a magnitude per row
    return x


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("mode", ["fp8", "fp8-tma-ue8m0"])
def test_more_than_2_31_elements(impl, mode, huge_input):
    q, s = quantize(impl, mode, huge_input, 128)
    for start in range(0, HUGE_ROWS, HUGE_CHUNK_ROWS):
        rows = slice(start, start + HUGE_CHUNK_ROWS)
        q_ref, s_ref = quantize(reference, mode, huge_input[rows], 128)
        assert_same_bits(q[rows], q_ref, f"q rows from {start}")
        assert_same_bits(s[rows], s_ref, f"s rows from {start}")


# --- The division, on many quotients -----------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("mode", ["fp8", "int8"])
def test_division_on_many_scales(dtype, mode, seed):
    """2^26 fresh random quotients x / s over 2^22 groups of 16, each with a scale of its own:
    the CUDA kernel's division (by a split reciprocal and one Markstein correction for 16-bit
    x, two corrections for fp32 x) must round like the reference's IEEE division wherever
    that decides an 8-bit result."""
    gen = generator(seed)
    x = random_values((1 << 12, 1 << 14), dtype, 16, MODES[mode][0], gen)
    check_against_reference(qbench_ext, mode, x, 16, f"{dtype_name(dtype)}/{mode}")


# --- CUDA graphs, torch.compile, opcheck ------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("mode", ["fp8-tma-ue8m0", "int8"])
def test_cuda_graph_replay(impl, mode, seed):
    gen = generator(seed)
    static_x = random_values((100, 2048), torch.bfloat16, 128, "fp8", gen)
    # Warm up (Triton compiles here) on a side stream, as torch.cuda.graphs advises.
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        quantize(impl, mode, static_x, 128)
    torch.cuda.current_stream().wait_stream(side)

    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        q, s = quantize(impl, mode, static_x, 128)
    for _ in range(2):
        static_x.copy_(random_values(static_x.shape, torch.bfloat16, 128, "fp8", gen))
        graph.replay()
        q_ref, s_ref = quantize(reference, mode, static_x, 128)
        assert_same_bits(q, q_ref, "q")
        assert_same_bits(s, s_ref, "s")


@pytest.mark.parametrize("mode", ["fp8", "fp8-tma-ue8m0", "int8"])
def test_torch_compile_fullgraph_matches_eager(mode, seed):
    gen = generator(seed)

    def quantize_x(x):
        return quantize(qbench_ext, mode, x, 128)

    compiled = torch.compile(quantize_x, fullgraph=True)
    # A second row count makes torch.compile retrace with a dynamic M.
    for rows in (33, 64):
        x = random_values((rows, 1024), torch.bfloat16, 128, "fp8", gen)
        q_eager, s_eager = quantize_x(x)
        q, s = compiled(x)
        assert s.stride() == s_eager.stride()
        assert_same_bits(q, q_eager, f"q, {rows} rows")
        assert_same_bits(s, s_eager, f"s, {rows} rows")


def opcheck_samples():
    """Argument sets (x, q, s, group_size, eps, use_ue8m0) for the raw op."""
    x = torch.randn(8, 256, dtype=torch.bfloat16, device="cuda")
    fp8_q = torch.zeros(8, 256, dtype=FP8, device="cuda")
    return {
        "fp8-row-major": (x, fp8_q, torch.zeros(8, 2, device="cuda"), 128, 1e-10, False),
        "fp8-column-major-ue8m0": (x, fp8_q, torch.zeros(2, 8, device="cuda").t(), 128, 1e-10, True),
        "fp8-tma-aligned": (x[:5], fp8_q[:5], torch.zeros(8, 8, device="cuda")[:, :5].t(), 32, 1e-10, False),
        "int8": (
            x.half(),
            torch.zeros(8, 256, dtype=torch.int8, device="cuda"),
            torch.zeros(8, 4, device="cuda"),
            64,
            1e-6,
            False,
        ),
    }


# opcheck's test_schema compares outputs with arithmetic that PyTorch does not implement for
# float8 ("mul_cuda" not implemented for 'Float8_e4m3fn'), so the FP8 samples skip that one
# check; the INT8 sample runs it on the same schema.
FP8_OPCHECK_UTILS = ("test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")


@pytest.mark.parametrize("sample", ["fp8-row-major", "fp8-column-major-ue8m0", "fp8-tma-aligned", "int8"])
def test_opcheck(sample):
    args = opcheck_samples()[sample]
    test_utils = FP8_OPCHECK_UTILS if args[1].dtype == FP8 else torch.library._OPCHECK_DEFAULT_UTILS
    torch.library.opcheck(torch.ops.qbench_ext.per_token_group_quant.default, args, test_utils=test_utils)
