"""Loads the compiled library and registers the fake (meta) implementations of its ops."""

from __future__ import annotations

import json

import torch

try:
    from . import _C  # importing runs the TORCH_LIBRARY registrations
except ImportError as exc:  # pragma: no cover - only when the package was not built
    raise ImportError(
        "qbench_ext's compiled library (qbench_ext._C) is missing or failed to load: "
        f"{exc}. Build it with `pip install --no-build-isolation .` (needs nvcc and a CUDA "
        "build of torch)."
    ) from exc

ops = torch.ops.qbench_ext


def build_info() -> dict[str, str]:
    """How the loaded library was built: CUDA version, arch list, torch and CUTLASS
    versions, build type. Works without a GPU."""
    info = json.loads(_C.build_info())
    runtime = info.pop("cuda_runtime_version")  # CUDART_VERSION, e.g. 13000
    return {"cuda_version": f"{runtime // 1000}.{runtime % 1000 // 10}", **info}


@torch.library.register_fake("qbench_ext::per_token_group_quant")
def _per_token_group_quant_fake(x, q, s, group_size, eps, use_ue8m0):
    return None


@torch.library.register_fake("qbench_ext::int8_scaled_mm")
def _int8_scaled_mm_fake(out, a, b, scale_a, scale_b, bias):
    return None


@torch.library.register_fake("qbench_ext::dynamic_scaled_int8_quant")
def _dynamic_scaled_int8_quant_fake(q, x, scale, azp):
    return None


@torch.library.register_fake("qbench_ext::static_scaled_int8_quant")
def _static_scaled_int8_quant_fake(q, x, scale, azp):
    return None


@torch.library.register_fake("qbench_ext::empty_kernel")
def _empty_kernel_fake(like):
    return None


def require_cuda(t: torch.Tensor, name: str) -> None:
    """Raises a clear error when a CUDA op is called with a tensor that is not on a GPU."""
    if t.device.type != "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"{name} is on {t.device}; qbench_ext's kernels need a CUDA GPU and none is "
                "available on this machine"
            )
        raise ValueError(f"{name} must be a CUDA tensor, got one on {t.device}")
