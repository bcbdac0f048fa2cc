"""Argument types and checks that every suite and command of the driver shares."""

from __future__ import annotations

import argparse
import sys

import torch

from .results import results_format


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def results_path(text: str) -> str:
    """A --out path ending in .json or .csv."""
    try:
        results_format(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def gpu_missing(alternative: str) -> bool:
    """True, after one line on stderr naming `alternative`, when there is no CUDA GPU."""
    if torch.cuda.is_available():
        return False
    print(
        f"error: no CUDA GPU is available (torch.cuda.is_available() is False); {alternative}",
        file=sys.stderr,
    )
    return True
