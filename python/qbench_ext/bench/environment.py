"""What a result was measured on: GPU, driver, software versions, the code's commit, the
command. Recorded beside every figure, since figures from different GPUs or builds are not
comparable."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import torch

import qbench_ext

_TOOL_TIMEOUT_S = 10
# Where the source is not a git checkout (a copy on the GPU machine), the commit it was taken
# from can be passed in this variable.
GIT_COMMIT_ENV = "QBENCH_GIT_COMMIT"
# One nvidia-smi call: the driver, and the clocks the GPU runs at and can reach, since a
# throttled or clock-locked GPU gives slower figures than the same GPU unthrottled.
_SMI_FIELDS = (
    "driver_version", "clocks.sm", "clocks.max.sm", "clocks.mem", "clocks.max.mem",
    "power.limit",
)


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
        return {"git_commit": os.environ.get(GIT_COMMIT_ENV) or None, "git_dirty": None}
    status = _command_output(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=source_dir
    )
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None}


def _nvidia_smi() -> dict:
    """Driver version and clocks (MHz) / power limit (W) of GPU 0; None where unknown."""
    fields = {name: None for name in _SMI_FIELDS}
    output = _command_output(
        ["nvidia-smi", "--id=0", f"--query-gpu={','.join(_SMI_FIELDS)}",
         "--format=csv,noheader,nounits"]
    )
    values = [v.strip() for v in output.splitlines()[0].split(",")] if output else []
    if len(values) == len(_SMI_FIELDS):
        for name, value in zip(_SMI_FIELDS, values):
            if name == "driver_version":
                fields[name] = value
                continue
            try:
                fields[name] = float(value)
            except ValueError:  # "[N/A]"
                pass
    return fields


def _gpu() -> dict:
    if not torch.cuda.is_available():
        return {
            "gpu_name": None, "gpu_sm_count": None, "gpu_compute_capability": None,
            "gpu_memory_bytes": None, "driver_version": None,
        }
    props = torch.cuda.get_device_properties(0)
    smi = _nvidia_smi()
    return {
        "gpu_name": props.name,
        "gpu_sm_count": props.multi_processor_count,
        "gpu_compute_capability": f"{props.major}.{props.minor}",
        "gpu_memory_bytes": props.total_memory,
        "driver_version": smi["driver_version"],
        "sm_clock_mhz": smi["clocks.sm"],
        "sm_clock_max_mhz": smi["clocks.max.sm"],
        "mem_clock_mhz": smi["clocks.mem"],
        "mem_clock_max_mhz": smi["clocks.max.mem"],
        "power_limit_w": smi["power.limit"],
    }


def collect_environment() -> dict:
    """The environment of the current process and CUDA device 0; the GPU's fields are None
    where there is no GPU (e.g. the accuracy command on the CPU)."""
    return {
        **_gpu(),
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
