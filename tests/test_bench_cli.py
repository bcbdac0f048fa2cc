"""The benchmark driver's command line, plan, checks and result files: all on the CPU."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qbench_ext import reference
from qbench_ext.bench import build_parser, main
from qbench_ext.bench import quant as quant_suite
from qbench_ext.bench.results import csv_rows, read_results, write_results

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "benchmark_per_token_group_quant.py"


def _planned_configurations(output: str) -> list[str]:
    """The configuration lines of a --dry-run plan (indented, after 'configurations:')."""
    lines = output.splitlines()
    start = lines.index("configurations:") + 1
    return [line.strip() for line in lines[start:] if line.startswith("  ")]


# ----------------------------------------------------------------------------- parsing


def test_quant_defaults():
    args = build_parser().parse_args(["quant"])
    assert args.dtype == "both"
    assert (args.warmup_iters, args.bench_iters) == (10, 100)
    assert args.shapes == [
        (32, 128), (64, 256), (16, 512), (1024, 6144), (8192, 6144), (1024, 7168), (8192, 7168),
    ]
    assert args.group_sizes == [64, 128]
    assert args.out is None and args.vllm_lib is None and not args.dry_run


def test_quant_flags():
    args = build_parser().parse_args(
        ["quant", "--dtype", "int8", "--warmup-iters", "3", "--bench-iters", "7",
         "--shapes", "1024x6144", "8X512", "--group-sizes", "128", "--out", "r.csv",
         "--vllm-lib", "/x/lib.so", "--dry-run"]
    )
    assert args.dtype == "int8"
    assert (args.warmup_iters, args.bench_iters) == (3, 7)
    assert args.shapes == [(1024, 6144), (8, 512)]
    assert args.group_sizes == [128]
    assert (args.out, args.vllm_lib, args.dry_run) == ("r.csv", "/x/lib.so", True)


@pytest.mark.parametrize("shape", ["1024", "1024x", "x6144", "0x128", "12x-4", "axb", "1x2x3"])
def test_bad_shape_is_a_clean_usage_error(shape, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["quant", "--shapes", shape])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "shape must be MxK" in err and repr(shape) in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--group-sizes", "100"],
        ["--dtype", "fp16"],
        ["--bench-iters", "0"],
        ["--warmup-iters", "many"],
        ["--out", "results.txt"],
    ],
)
def test_bad_values_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["quant", *argv])
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_a_suite_is_required(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([])
    assert exit_info.value.code == 2


# ----------------------------------------------------------------------------- the plan


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], 4 * 2 * 7 + 2 * 7),  # FP8: 4 layouts x 2 groups x 7 shapes; INT8: 2 x 7
        (["--dtype", "fp8"], 4 * 2 * 7),
        (["--dtype", "int8"], 2 * 7),
        (["--shapes", "128x512", "4x256", "--group-sizes", "64", "128", "256"], (4 + 1) * 3 * 2),
    ],
)
def test_dry_run_lists_every_configuration(argv, expected, capsys, monkeypatch):
    def no_gpu_please(*args, **kwargs):
        raise AssertionError("--dry-run touched the GPU")

    monkeypatch.setattr(torch.cuda, "is_available", no_gpu_please)
    monkeypatch.setattr(torch.cuda, "_lazy_init", no_gpu_please)
    assert main(["quant", "--dry-run", *argv]) == 0
    out = capsys.readouterr().out
    configurations = _planned_configurations(out)
    assert len(configurations) == expected
    assert len(set(configurations)) == expected
    assert f"{expected} configurations x 5 providers" in out


def test_dry_run_fp8_combinations_and_int8(capsys):
    main(["quant", "--dry-run", "--shapes", "64x256", "--group-sizes", "128"])
    assert _planned_configurations(capsys.readouterr().out) == [
        "64x256 G=128 fp8",
        "64x256 G=128 fp8 ue8m0",
        "64x256 G=128 fp8 col-major",
        "64x256 G=128 fp8 col-major ue8m0",
        "64x256 G=128 int8",
    ]


def test_dry_run_explains_missing_vllm_in_one_line(capsys, monkeypatch):
    monkeypatch.delenv("QBENCH_VLLM_LIB", raising=False)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    main(["quant", "--dry-run", "--dtype", "int8"])
    vllm_lines = [line for line in capsys.readouterr().out.splitlines() if "vLLM:" in line]
    assert vllm_lines == [
        "vLLM: not available (no `vllm` package, QBENCH_VLLM_LIB unset, no --vllm-lib)"
    ]


def test_dry_run_names_the_vllm_library(capsys, tmp_path):
    library = tmp_path / "_C_stable_libtorch.abi3.so"
    library.write_bytes(b"")
    main(["quant", "--dry-run", "--dtype", "int8", "--vllm-lib", str(library)])
    out = capsys.readouterr().out
    assert f"vLLM: CUDA ops from {library}" in out
    assert "vLLM Triton: n/a" in out


def test_group_size_must_divide_k(capsys):
    assert main(["quant", "--dry-run", "--shapes", "16x96", "--group-sizes", "64"]) == 2
    assert "not a multiple of group size 64" in capsys.readouterr().err


def test_benchmark_script_accepts_the_same_flags():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--dtype", "fp8", "--warmup-iters", "2",
         "--bench-iters", "5", "--shapes", "1024x7168", "--group-sizes", "64", "128",
         "--out", "unused.json"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert len(_planned_configurations(done.stdout)) == 8


def test_without_a_gpu_it_says_so_in_one_line_and_fails(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    status = main(["quant", "--shapes", "32x128"])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "no CUDA GPU is available" in captured.err


# ----------------------------------------------------------------------------- checks


def _fp8_outputs(x, **options):
    return reference.per_token_group_quant_fp8(x, 64, **options)


def test_check_exact_close_and_mismatch_fp8():
    x = torch.randn(8, 256, generator=torch.Generator().manual_seed(0)) * 8
    ref_q, ref_s = _fp8_outputs(x)
    check = quant_suite.check_outputs

    assert check(ref_q.clone(), ref_s.clone(), ref_q, ref_s, bit_exact=True) == ("exact", None)

    one_step = ref_q.clone()
    codes = one_step.view(torch.uint8)[0]
    # Four codes below the largest (0x7E, 448) and not zero: one more is the next e4m3 value
    # up in magnitude, whatever the sign.
    inner = ((codes & 0x7F) != 0) & ((codes & 0x7F) < 0x7E)
    codes[inner.nonzero()[:4, 0]] += 1
    status, detail = check(one_step, ref_s, ref_q, ref_s, bit_exact=False)
    assert status == "close" and detail.startswith("4 of 2048 q codes")
    assert check(one_step, ref_s, ref_q, ref_s, bit_exact=True)[0] == "MISMATCH"

    # Two codes up stays a finite e4m3 value (0x7F would be NaN) below 448.
    two_steps = ref_q.clone()
    codes = two_steps.view(torch.uint8)[0]
    codes[(((codes & 0x7F) != 0) & ((codes & 0x7F) < 0x7C)).nonzero()[0, 0]] += 2
    assert check(two_steps, ref_s, ref_q, ref_s, bit_exact=False)[0] == "MISMATCH"

    off_scale = ref_s.clone()
    off_scale[0, 0] *= 1.01
    assert check(ref_q, off_scale, ref_q, ref_s, bit_exact=False)[0] == "MISMATCH"


def test_one_step_means_neighbouring_e4m3_values():
    def close(got, ref):
        q = torch.tensor([got], dtype=torch.uint8).view(torch.float8_e4m3fn)
        r = torch.tensor([ref], dtype=torch.uint8).view(torch.float8_e4m3fn)
        s = torch.ones(1, 1)
        return quant_suite.check_outputs(q, s, r, s, bit_exact=False)[0] == "close"

    assert close(0x6F, 0x6E) and close(0x70, 0x6F)  # 120 vs 112, 128 vs 120
    assert not close(0x70, 0x6E)  # 128 vs 112: two values apart, across a binade
    assert close(0x81, 0x00) and close(0x01, 0x80)  # -2^-9 vs +0, 2^-9 vs -0
    assert not close(0x81, 0x01)  # -2^-9 vs 2^-9
    assert not close(0x7F, 0x7E) and close(0x7F, 0xFF)  # NaN only against NaN


def test_check_compares_scales_by_value_across_layouts():
    x = torch.randn(6, 128) * 8
    row_q, row_s = _fp8_outputs(x)
    col_q, col_s = _fp8_outputs(x, column_major_scales=True)
    assert col_s.stride() != row_s.stride()
    assert quant_suite.check_outputs(col_q, col_s, row_q, row_s, bit_exact=True)[0] == "exact"


def test_check_nan_is_equal_to_nan():
    x = torch.randn(2, 64) * 8
    x[0, 3] = math.nan
    ref_q, ref_s = _fp8_outputs(x)
    assert torch.isnan(ref_s[0, 0])
    status, _ = quant_suite.check_outputs(ref_q.clone(), ref_s.clone(), ref_q, ref_s, bit_exact=True)
    assert status == "exact"


def test_check_int8_one_step_is_close():
    x = torch.randn(4, 128) * 8
    ref_q, ref_s = reference.per_token_group_quant_int8(x, 128)
    check = quant_suite.check_outputs
    truncated = ref_q.clone()
    truncated[0, 0] += 1 if ref_q[0, 0] < 127 else -1
    assert check(truncated, ref_s, ref_q, ref_s, bit_exact=False)[0] == "close"
    assert check(ref_q.to(torch.uint8), ref_s, ref_q, ref_s, bit_exact=False)[0] == "MISMATCH"


# ----------------------------------------------------------------------------- results


def _measurement(check, median_ms=None, note=None):
    timed = median_ms is not None
    return {
        "check": check,
        "median_ms": median_ms,
        "p20_ms": median_ms * 0.9 if timed else None,
        "p80_ms": median_ms * 1.1 if timed else None,
        "gbps": 1000.0 if timed else None,
        "timing": "cuda-graph" if timed else None,
        "calls_per_replay": 100 if timed else None,
        "note": note,
    }


def _fabricated_report() -> dict:
    providers = {
        "qbench_cuda": _measurement("exact", 0.0125),
        "qbench_triton": _measurement("exact", 0.02),
        "vllm_cuda": _measurement("close", 0.0150, note="3 of 4096 q codes differ"),
        "vllm_triton": _measurement("n/a", note="needs the `vllm` package"),
        "torch_compile": _measurement("MISMATCH", note="q codes differ"),
    }
    config = {"dtype": "fp8", "m": 32, "k": 128, "group_size": 64,
              "column_major_scales": True, "use_ue8m0": False, "bytes": 12544}
    return {
        "suite": "quant",
        "environment": {"gpu_name": "Fabricated GPU", "gpu_sm_count": 132},
        "ceilings": {"copy_gbps": 3000.0, "empty_kernel_median_us": 2.5},
        "notes": [],
        "results": [
            {"config": config, "providers": providers},
            {
                "config": {**config, "dtype": "int8", "column_major_scales": False},
                "providers": providers,
            },
        ],
    }


def test_json_round_trip(tmp_path):
    report = _fabricated_report()
    path = tmp_path / "not-yet-made" / "results.json"
    write_results(path, report)
    assert read_results(path) == report


def test_csv_round_trip_has_a_row_per_configuration_and_provider(tmp_path):
    report = _fabricated_report()
    path = tmp_path / "results.CSV"
    write_results(path, report)
    rows = read_results(path)
    assert len(rows) == 2 * 5
    assert rows == csv_rows(report)
    assert rows[2]["provider"] == "vllm_cuda" and rows[2]["median_ms"] == 0.015
    assert rows[3]["median_ms"] is None and rows[3]["column_major_scales"] is True


def test_results_table_shows_every_state():
    table = quant_suite.format_results_table(_fabricated_report()["results"], copy_gbps=3000.0)
    header, _, first, _ = table.splitlines()
    assert "our CUDA (us)" in header and "Triton/CUDA" in header and "% of copy BW" in header
    cells = first.split()
    assert cells[:5] == ["32x128", "64", "yes", "no", "fp8"]
    assert cells[5:] == ["12.50", "20.00", "1.60x", "15.00*", "n/a", "mismatch", "1000", "33.3%"]
