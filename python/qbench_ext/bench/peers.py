"""The peers our quantizers are measured against: vLLM's CUDA and Triton kernels, and
torch.compile of our pure-PyTorch reference.

vLLM comes from one of two places, never required:
- its compiled ops library, loaded with torch.ops.load_library (`--vllm-lib PATH`, else the
  QBENCH_VLLM_LIB environment variable): the CUDA ops only, registered under torch.ops._C;
- an installed `vllm` package: its CUDA ops (the same torch.ops._C, loaded by importing
  vllm._custom_ops) and its Triton fallbacks in fp8_utils / int8_utils.
Both CUDA sources are called through the raw op, with outputs we allocate, so that vLLM's
column is its kernel alone, as ours is. `load_vllm` and `resolve_vllm_op` serve every suite
that calls vLLM's ops (the GEMM suite's cutlass_scaled_mm and INT8 quantizers too).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import torch

VLLM_LIB_ENV = "QBENCH_VLLM_LIB"
EPS = 1e-10
# The code range each output dtype is clamped to, as vLLM's callers pass it.
CODE_RANGE = {"fp8": (-448.0, 448.0), "int8": (-128.0, 127.0)}

_CUDA_OP_NAMES = {"fp8": "per_token_group_fp8_quant", "int8": "per_token_group_quant_int8"}
# The argument names of the ops in vLLM 0.26's stable-ABI library; other versions differ
# (e.g. without the dummy flags) and are adapted to by name.
_EXPECTED_CUDA_ARGS = {
    "fp8": (
        "input", "output_q", "output_s", "group_size", "eps", "fp8_min", "fp8_max",
        "scale_ue8m0", "dummy_is_scale_transposed", "dummy_is_tma_aligned",
    ),
    "int8": ("input", "output_q", "output_s", "group_size", "eps", "int8_min", "int8_max"),
}
_TRITON_MODULES = {
    "fp8": "vllm.model_executor.layers.quantization.utils.fp8_utils",
    "int8": "vllm.model_executor.layers.quantization.utils.int8_utils",
}
_TRITON_FUNCTIONS = {"fp8": "per_token_group_quant_fp8", "int8": "per_token_group_quant_int8"}
_TRITON_NEEDS_PACKAGE = "needs the `vllm` package"


class ProviderUnavailable(Exception):
    """A provider cannot run a configuration; the message says why (its cell reads n/a)."""


def exception_summary(exc: BaseException) -> str:
    """The exception's type and the first line of its message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


@dataclass(frozen=True)
class VllmSource:
    """Where vLLM would come from, found without loading anything (so --dry-run can say)."""

    kind: str | None  # "library", "package", or None when there is no vLLM
    location: str | None  # the library's path, or the package's version
    reason: str | None  # how the library was named, or why there is no vLLM

    def describe(self) -> str:
        """One line: where vLLM's columns come from, or why they read n/a."""
        if self.kind == "library":
            return (
                f"vLLM: CUDA ops from {self.location} ({self.reason}); "
                f"vLLM Triton: n/a ({_TRITON_NEEDS_PACKAGE})"
            )
        if self.kind == "package":
            return f"vLLM: CUDA ops and Triton fallbacks from the `vllm` package {self.location}"
        return f"vLLM: not available ({self.reason})"


def locate_vllm(vllm_lib: str | None) -> VllmSource:
    """--vllm-lib first, then $QBENCH_VLLM_LIB, then an installed `vllm` package. A library
    that was named but is missing is reported, not skipped over."""
    for path, origin in ((vllm_lib, "--vllm-lib"), (os.environ.get(VLLM_LIB_ENV), VLLM_LIB_ENV)):
        if path:
            if not Path(path).is_file():
                return VllmSource(None, None, f"{origin} names {path}, which does not exist")
            return VllmSource("library", str(Path(path).resolve()), f"from {origin}")
    if importlib.util.find_spec("vllm") is not None:
        try:
            version = importlib.metadata.version("vllm")
        except importlib.metadata.PackageNotFoundError:  # a source tree on sys.path
            version = "(version unknown)"
        return VllmSource("package", version, None)
    return VllmSource(
        None, None, f"no `vllm` package, {VLLM_LIB_ENV} unset, no --vllm-lib"
    )


@dataclass(frozen=True)
class VllmOp:
    """One of vLLM's ops (torch.ops._C.NAME.default) and its argument names, from its schema."""

    name: str
    op: Callable
    arg_names: tuple[str, ...]


_LOADED: dict[tuple[str | None, str | None], str | None] = {}


def load_vllm(source: VllmSource) -> str | None:
    """Registers vLLM's ops (torch.ops._C) from `source`, once per process: loads its library,
    or imports the package's vllm._custom_ops. Returns None when the ops are loaded, else why
    not (a line that starts with "not available" or "failed to load"); vLLM's columns then
    read n/a. Needs a GPU process: loading registers CUDA ops."""
    key = (source.kind, source.location)
    if key in _LOADED:
        return _LOADED[key]
    if source.kind is None:
        return f"not available ({source.reason})"
    error = None
    try:
        if source.kind == "library":
            torch.ops.load_library(source.location)
        else:
            import vllm._custom_ops  # noqa: F401  (loads vLLM's torch.ops._C)
    except Exception as exc:  # any failure to load leaves the vLLM columns n/a
        # load_library's own message only names the file; the cause says what is missing.
        cause = f" ({exception_summary(exc.__cause__)})" if exc.__cause__ else ""
        error = f"failed to load {source.location}: {exception_summary(exc)}{cause}"
    _LOADED[key] = error
    return error


def resolve_vllm_op(name: str, expected_args: tuple[str, ...], notes: list[str]) -> VllmOp:
    """torch.ops._C.NAME (vLLM's ops must be loaded), with its argument names read off its
    schema; a schema whose names differ from `expected_args` is noted once in `notes`, for the
    caller passes arguments by name. Raises ProviderUnavailable where the op is missing."""
    try:
        op = getattr(torch.ops._C, name).default
    except (AttributeError, RuntimeError) as exc:
        raise ProviderUnavailable(
            f"vLLM has no torch.ops._C.{name} ({exception_summary(exc)})"
        ) from None
    arg_names = tuple(arg.name for arg in op._schema.arguments)
    if arg_names != tuple(expected_args):
        note = f"vLLM's {name} has the schema {op._schema}; arguments are passed by name"
        if note not in notes:
            notes.append(note)
    return VllmOp(name, op, arg_names)


def _resolve_cuda_op(dtype: str, notes: list[str]) -> VllmOp:
    return resolve_vllm_op(_CUDA_OP_NAMES[dtype], _EXPECTED_CUDA_ARGS[dtype], notes)


@contextlib.contextmanager
def _cuda_path_disabled(platform):
    """Makes vLLM's quantizers take their Triton fallback, as vLLM's own benchmark does: they
    pick the CUDA op only when the platform says it is CUDA."""
    with contextlib.ExitStack() as stack:
        for check in ("is_cuda", "is_cuda_alike"):
            if hasattr(platform, check):
                stack.enter_context(mock.patch.object(platform, check, return_value=False))
        yield


class VllmQuant:
    """vLLM's per-token-group quantizers, loaded from a VllmSource (needs a GPU process:
    loading registers CUDA ops)."""

    def __init__(self, source: VllmSource):
        self.source = source
        self.notes: list[str] = []  # findings to print once, e.g. a schema that differs
        self._cuda_ops: dict[str, VllmOp | ProviderUnavailable] = {}
        self._triton: dict[str, Callable | ProviderUnavailable] = {}
        self._load_error: str | None = load_vllm(source)
        if self._load_error is not None:
            return
        for dtype in _CUDA_OP_NAMES:
            try:
                self._cuda_ops[dtype] = _resolve_cuda_op(dtype, self.notes)
            except ProviderUnavailable as exc:
                self._cuda_ops[dtype] = exc
            self._triton[dtype] = self._resolve_triton(dtype)

    def _resolve_triton(self, dtype: str) -> Callable | ProviderUnavailable:
        if self.source.kind != "package":
            return ProviderUnavailable(_TRITON_NEEDS_PACKAGE)
        try:
            module = importlib.import_module(_TRITON_MODULES[dtype])
            return getattr(module, _TRITON_FUNCTIONS[dtype])
        except Exception as exc:  # an import error anywhere in vLLM only disables this column
            return ProviderUnavailable(f"vLLM Triton {dtype}: {exception_summary(exc)}")

    def describe(self) -> str:
        """One line: the source's, plus each reason a vLLM column is n/a everywhere. The
        ProviderUnavailable messages of those reasons are part of it, so a report can leave
        them out of its per-configuration notes."""
        if self._load_error is not None:
            return f"vLLM: {self._load_error}"
        line = self.source.describe()
        for failure in [*self._cuda_ops.values(), *self._triton.values()]:
            if isinstance(failure, ProviderUnavailable) and str(failure) not in line:
                line += f"; {failure}"
        return line

    def _unavailable(self) -> None:
        if self._load_error is not None:
            raise ProviderUnavailable(self.describe())

    def cuda_quant(
        self,
        dtype: str,
        x: torch.Tensor,
        q: torch.Tensor,
        s: torch.Tensor,
        group_size: int,
        use_ue8m0: bool,
    ) -> Callable[[], None]:
        """A call of vLLM's CUDA op writing q and s (s's strides choose the layout: vLLM
        infers column-major scales from them)."""
        self._unavailable()
        cuda_op = self._cuda_ops[dtype]
        if isinstance(cuda_op, ProviderUnavailable):
            raise cuda_op
        code_min, code_max = CODE_RANGE[dtype]
        values = {
            "input": x,
            "output_q": q,
            "output_s": s,
            "group_size": group_size,
            "eps": EPS,
            f"{dtype}_min": code_min,
            f"{dtype}_max": code_max,
            "scale_ue8m0": use_ue8m0,
        }
        if use_ue8m0 and "scale_ue8m0" not in cuda_op.arg_names:
            raise ProviderUnavailable(f"this vLLM's {_CUDA_OP_NAMES[dtype]} has no UE8M0 option")
        args = []
        for name in cuda_op.arg_names:
            if name in values:
                args.append(values[name])
            elif name.startswith("dummy_"):  # placeholders the kernel ignores
                args.append(False)
            else:
                raise ProviderUnavailable(
                    f"vLLM's {_CUDA_OP_NAMES[dtype]} takes an unknown argument {name!r}: "
                    f"{cuda_op.op._schema}"
                )
        return lambda: cuda_op.op(*args)

    def triton_quant(
        self,
        dtype: str,
        x: torch.Tensor,
        out_q: torch.Tensor,
        group_size: int,
        column_major_scales: bool,
        use_ue8m0: bool,
    ) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
        """A call of vLLM's Python quantizer forced onto its Triton kernel."""
        self._unavailable()
        quantize = self._triton[dtype]
        if isinstance(quantize, ProviderUnavailable):
            raise quantize
        params = inspect.signature(quantize).parameters
        kwargs: dict = {"eps": EPS}
        if dtype == "fp8":
            kwargs["column_major_scales"] = column_major_scales
            if "use_ue8m0" in params:
                kwargs["use_ue8m0"] = use_ue8m0
            elif use_ue8m0:
                raise ProviderUnavailable("this vLLM's Triton FP8 quantizer has no UE8M0 option")
        if "out_q" in params:
            kwargs["out_q"] = out_q
        platform = getattr(inspect.getmodule(quantize), "current_platform", None)
        if platform is None:
            raise ProviderUnavailable(
                "cannot force vLLM onto Triton: its module has no current_platform"
            )

        def call():
            with _cuda_path_disabled(platform):
                return quantize(x, group_size, **kwargs)

        return call


def compiled_reference(reference: Callable, group_size: int, **fixed_kwargs) -> Callable:
    """torch.compile (static shapes) of `reference(x, group_size, **fixed_kwargs, out_q=)`.

    Compiled state is reset first: every configuration is a new specialization, and letting
    them pile up on one function would hit Dynamo's recompile limit, after which it silently
    runs the function eagerly."""
    torch.compiler.reset()

    def quantize(x: torch.Tensor, out_q: torch.Tensor):
        return reference(x, group_size, out_q=out_q, **fixed_kwargs)

    return torch.compile(quantize, dynamic=False)
