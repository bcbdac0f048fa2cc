"""What a result was measured on: GPU, driver, software versions, the code's commit, the
command. Recorded beside every figure, since figures from different GPUs or builds are not
comparable."""

from __future__ import annotations

import datetime
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import torch

import qbench_ext

_TOOL_TIMEOUT_S = 10


def _command_output(args: list[str], cwd: Path | None = None) -> str | None:
    """stdout of a helper tool, or None where it is missing or fails."""
    try:
        done = subprocess.run(
            args, cwd=cwd, capture_output=True, text=True, timeout=_TOOL_TIMEOUT_S, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_state() -> dict:
    source_dir = Path(qbench_ext.__file__).resolve().parent
    commit = _command_output(["git", "rev-parse", "HEAD"], cwd=source_dir)
    if commit is None:
        return {"git_commit": None, "git_dirty": None}
    status = _command_output(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=source_dir
    )
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None}


def collect_environment() -> dict:
    """The environment of the current process and CUDA device 0 (needs a GPU)."""
    props = torch.cuda.get_device_properties(0)
    driver = _command_output(
        ["nvidia-smi", "--id=0", "--query-gpu=driver_version", "--format=csv,noheader"]
    )
    return {
        "gpu_name": props.name,
        "gpu_sm_count": props.multi_processor_count,
        "gpu_compute_capability": f"{props.major}.{props.minor}",
        "gpu_memory_bytes": props.total_memory,
        "driver_version": driver,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        # Read from the package metadata: importing triton only to read its version is slow.
        "triton": _package_version("triton"),
        "qbench_ext": qbench_ext.__version__,
        "qbench_ext_build": qbench_ext.build_info(),
        **_git_state(),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.orig_argv),
    }
