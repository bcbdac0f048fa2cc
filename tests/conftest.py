"""Fixtures shared by the test modules. The `gpu` marker is declared in pyproject.toml."""

import zlib

import pytest
import torch


@pytest.fixture(scope="session")
def cuda() -> torch.device:
    """The GPU, or a skip. Session-scoped so that it is set up before any module-scoped
    fixture that allocates on the GPU, and a machine without one skips instead of erroring."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU; run `pytest -m gpu` on a GPU machine")
    return torch.device("cuda")


@pytest.fixture
def seed(request) -> int:
    """A seed of its own for each test (and parametrization), stable from run to run."""
    return zlib.crc32(request.node.nodeid.encode())
