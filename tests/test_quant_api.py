"""The quantizers' Python API without a GPU: argument checks (identical in the CUDA, Triton and
reference implementations), the loaded library, the op schema and its fake implementation."""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import qbench_ext
import qbench_ext.triton_ref
from qbench_ext import reference

FP8 = torch.float8_e4m3fn
IMPLEMENTATIONS = [
    pytest.param(qbench_ext, id="cuda"),
    pytest.param(qbench_ext.triton_ref, id="triton"),
    pytest.param(reference, id="reference"),
]
Q_DTYPES = {"fp8": FP8, "int8": torch.int8}


def quantize(impl, quantizer, x, group_size=128, **kwargs):
    return getattr(impl, f"per_token_group_quant_{quantizer}")(x, group_size, **kwargs)


def valid_x():
    return torch.randn(4, 256, dtype=torch.bfloat16)


def bad(case_id, error, names, replacements):
    """A case: `replacements(q_dtype)` gives the arguments that replace valid ones, `error`
    the exception expected and `names` a pattern naming the offending argument."""
    return pytest.param(replacements, error, names, id=case_id)


BAD_ARGUMENTS = [
    bad("x-int", TypeError, r"\bx\b", lambda q: {"x": torch.ones(4, 256, dtype=torch.int32)}),
    bad("x-list", TypeError, r"\bx\b", lambda q: {"x": [[1.0] * 256]}),
    bad("x-0d", ValueError, r"\bx\b", lambda q: {"x": torch.tensor(1.0)}),
    bad("k-not-divisible", ValueError, r"x\.shape\[-1\]", lambda q: {"x": torch.randn(4, 200)}),
    bad("x-strided-k", ValueError, r"x's last dim", lambda q: {"x": torch.randn(4, 512)[:, ::2]}),
    bad("x-rows-overlap", ValueError, r"x's rows", lambda q: {"x": torch.randn(1, 256).expand(4, 256)}),
    bad("x-lead-dims", ValueError, r"x's leading dims", lambda q: {"x": torch.randn(3, 4, 256).transpose(0, 1)}),
    bad("group-48", ValueError, r"group_size", lambda q: {"group_size": 48}),
    bad("group-512", ValueError, r"group_size", lambda q: {"group_size": 512}),
    bad("group-8", ValueError, r"group_size", lambda q: {"group_size": 8}),
    bad("group-float", TypeError, r"group_size", lambda q: {"group_size": 128.0}),
    bad("group-bool", TypeError, r"group_size", lambda q: {"group_size": True}),
    bad("out-dtype", TypeError, r"out_q", lambda q: {"out_q": torch.empty(4, 256, dtype=torch.uint8)}),
    bad("out-shape", ValueError, r"out_q", lambda q: {"out_q": torch.empty(4, 128, dtype=q)}),
    bad("out-strided", ValueError, r"out_q", lambda q: {"out_q": torch.empty(256, 4, dtype=q).t()}),
    bad("out-device", ValueError, r"out_q", lambda q: {"out_q": torch.empty(4, 256, dtype=q, device="meta")}),
    bad("out-list", TypeError, r"out_q", lambda q: {"out_q": [0] * 1024}),
    bad("eps-0", ValueError, r"eps", lambda q: {"eps": 0.0}),
    bad("eps-negative", ValueError, r"eps", lambda q: {"eps": -1e-10}),
    bad("eps-huge", ValueError, r"eps", lambda q: {"eps": 1e31}),
    bad("eps-nan", ValueError, r"eps", lambda q: {"eps": float("nan")}),
    bad("eps-str", TypeError, r"eps", lambda q: {"eps": "1e-10"}),
]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("quantizer", Q_DTYPES)
@pytest.mark.parametrize("bad_arguments, error, names", BAD_ARGUMENTS)
def test_bad_arguments_raise_naming_the_argument(impl, quantizer, bad_arguments, error, names):
    # On a machine without a GPU, any launch would raise "no GPU" instead: getting the
    # specific error shows the check runs first.
    args = {"x": valid_x(), "group_size": 128, **bad_arguments(Q_DTYPES[quantizer])}
    with pytest.raises(error, match=names):
        quantize(impl, quantizer, **args)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_tma_aligned_scales_need_column_major(impl):
    with pytest.raises(ValueError, match=r"tma_aligned_scales"):
        quantize(impl, "fp8", valid_x(), tma_aligned_scales=True)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS[:2])
@pytest.mark.parametrize("quantizer", Q_DTYPES)
@pytest.mark.parametrize(
    "gpu_available, error, message",
    [
        (False, RuntimeError, r"need a CUDA GPU and none is available"),
        (True, ValueError, r"must be a CUDA tensor"),
    ],
)
def test_cpu_tensor_is_rejected_by_the_gpu_kernels(
    impl, quantizer, gpu_available, error, message, monkeypatch
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu_available)
    with pytest.raises(error, match=message):
        quantize(impl, quantizer, valid_x())


def test_build_info():
    info = qbench_ext.build_info()
    assert set(info) == {"cuda_version", "cuda_archs", "torch_version", "cutlass_version", "build_type"}
    assert all(isinstance(value, str) and value for value in info.values()), info


def test_schema_declares_q_and_s_mutated():
    schema = torch.ops.qbench_ext.per_token_group_quant.default._schema
    written = {a.name for a in schema.arguments if a.alias_info is not None and a.alias_info.is_write}
    assert written == {"q", "s"}
    assert schema.is_mutable and not schema.returns


def layout(t):
    """dtype, shape and the strides that address elements: not those of dims of size 1, nor
    any of an empty tensor (fake and real tensors may differ there)."""
    strides = () if t.numel() == 0 else tuple(st for n, st in zip(t.shape, t.stride()) if n > 1)
    return t.dtype, t.shape, strides


LAYOUTS = [
    pytest.param("int8", {}, id="int8"),
    pytest.param("fp8", {}, id="fp8-row-major"),
    pytest.param("fp8", {"column_major_scales": True, "use_ue8m0": True}, id="fp8-column-major"),
    pytest.param("fp8", {"column_major_scales": True, "tma_aligned_scales": True}, id="fp8-tma-aligned"),
]


@pytest.mark.parametrize("quantizer, options", LAYOUTS)
@pytest.mark.parametrize("shape", [(5, 256), (1, 256), (2, 3, 256), (0, 256), (256,)])
def test_fake_cuda_outputs_are_laid_out_like_the_reference(quantizer, options, shape):
    # FakeTensorMode makes CUDA tensors without a GPU (what torch.compile traces with), so the
    # CUDA wrapper runs up to the op, whose registered fake implementation is what executes.
    # (The Triton wrapper launches its kernel directly, which fake tensors cannot do.)
    with FakeTensorMode():
        x = torch.empty(shape, dtype=torch.bfloat16, device="cuda")
        q, s = quantize(qbench_ext, quantizer, x, **options)
    expected_q, expected_s = quantize(reference, quantizer, torch.randn(shape), **options)
    assert q.device.type == "cuda" and s.device.type == "cuda"
    for got, expected in ((q, expected_q), (s, expected_s)):
        assert layout(got) == layout(expected)


def test_fake_op_leaves_outputs_as_they_are():
    with FakeTensorMode():
        x = torch.empty(8, 256, dtype=torch.float16, device="cuda")
        q = torch.empty(8, 256, dtype=FP8, device="cuda")
        s = torch.empty(2, 8, device="cuda").t()
        result = torch.ops.qbench_ext.per_token_group_quant(x, q, s, 128, 1e-10, False)
    assert result is None
    assert (q.shape, q.dtype, s.shape, s.stride()) == ((8, 256), FP8, (8, 2), (1, 8))
