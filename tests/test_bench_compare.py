"""`python -m qbench_ext.bench compare`: marks, counts and exit codes on crafted files."""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import pytest

from qbench_ext.bench import main
from qbench_ext.bench.compare import (
    BROKEN,
    FIXED,
    IMPROVED,
    REGRESSED,
    UNCHANGED,
    classify,
    compare_documents,
    parse_threshold,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _timed(median_us, spread=0.01, check="exact"):
    ms = median_us * 1e-3
    return {
        "check": check, "median_ms": ms, "p20_ms": ms * (1 - spread), "p80_ms": ms * (1 + spread),
        "gbps": None, "timing": "cuda-graph", "calls_per_replay": 10, "note": None,
    }


def _untimed(check="MISMATCH"):
    return {"check": check, "median_ms": None, "p20_ms": None, "p80_ms": None, "gbps": None,
            "timing": None, "calls_per_replay": None, "note": "differs"}


def _config(m, k=128, dtype="fp8"):
    return {"dtype": dtype, "m": m, "k": k, "group_size": 64, "column_major_scales": False,
            "use_ue8m0": False, "bytes": m * k * 3}


def _document(rows, gpu="NVIDIA H200"):
    """A quant-suite document from {m: {provider: measurement}}."""
    return {
        "suite": "quant",
        "environment": {"gpu_name": gpu},
        "ceilings": {"copy_gbps": 4000.0},
        "notes": [],
        "results": [{"config": _config(m), "providers": p} for m, p in rows.items()],
    }


def _write(tmp_path: Path, name: str, document: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


# ----------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    "base, new, expected",
    [
        (_timed(10.0), _timed(8.0), IMPROVED),
        (_timed(10.0), _timed(12.0), REGRESSED),
        # medians 5% apart, but the runs' own spreads (+-10%) overlap: noise
        (_timed(10.0, spread=0.10), _timed(10.5, spread=0.10), UNCHANGED),
        # spreads apart, but by less than the threshold (2% < 3%)
        (_timed(10.0, spread=0.001), _timed(10.2, spread=0.001), UNCHANGED),
        # just beyond: new.p20 = 10.4 * 0.999 > base.p80 * 1.03 = 10.0 * 1.001 * 1.03
        (_timed(10.0, spread=0.001), _timed(10.4, spread=0.001), REGRESSED),
        (_timed(10.0), _untimed(), BROKEN),
        (_untimed(), _timed(10.0), FIXED),
    ],
)
def test_classify(base, new, expected):
    assert classify(base, new, 0.03) == expected


def test_classify_without_percentiles_uses_the_median():
    base, new = {"median_ms": 1.0}, {"median_ms": 1.05}
    assert classify(base, new, 0.03) == REGRESSED
    assert classify(base, new, 0.06) == UNCHANGED


@pytest.mark.parametrize("text, value", [("3%", 0.03), ("3", 0.03), ("0.5%", 0.005), ("0", 0.0)])
def test_parse_threshold(text, value):
    assert parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["-1%", "abc", "3%%"])
def test_bad_threshold(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_threshold(text)


# ----------------------------------------------------------------------------- files

BASE = {
    32: {"qbench_cuda": _timed(10.0), "vllm_cuda": _timed(10.0)},
    64: {"qbench_cuda": _timed(10.0), "vllm_cuda": _timed(10.0)},
    128: {"qbench_cuda": _timed(10.0), "vllm_cuda": _timed(10.0)},
    256: {"qbench_cuda": _timed(10.0), "vllm_cuda": _timed(10.0)},  # only in base
}
NEW = {
    32: {"qbench_cuda": _timed(8.0), "vllm_cuda": _timed(10.0)},  # improved
    64: {"qbench_cuda": _timed(10.1), "vllm_cuda": _timed(20.0)},  # noise; the peer regressed
    128: {"qbench_cuda": _timed(10.0), "vllm_cuda": _timed(10.0)},
    512: {"qbench_cuda": _timed(10.0), "vllm_cuda": _timed(10.0)},  # only in new
}


def test_improvement_noise_and_missing_configurations(tmp_path, capsys):
    base = _write(tmp_path, "base.json", _document(BASE))
    new = _write(tmp_path, "new.json", _document(NEW))
    assert main(["compare", base, new]) == 0
    out = capsys.readouterr().out
    assert "warning" not in out
    assert "1 improved, 0 regressed, 2 unchanged (of 3 compared)" in out
    assert "only in base: 1 configurations: quant: 256x128 G=64 fp8" in out
    assert "only in new: 1 configurations: quant: 512x128 G=64 fp8" in out
    improved = [line for line in out.splitlines() if line.rstrip().endswith(IMPROVED)]
    assert len(improved) == 1 and "32x128 G=64 fp8" in improved[0] and "+25.0%" in improved[0]
    assert "0.800" in improved[0]


def test_peers_gate_only_with_providers_all(tmp_path, capsys):
    base = _write(tmp_path, "base.json", _document(BASE))
    new = _write(tmp_path, "new.json", _document(NEW))
    assert main(["compare", base, new, "--providers", "all"]) == 1
    out = capsys.readouterr().out
    assert "1 improved, 1 regressed, 4 unchanged (of 6 compared)" in out
    regressed = [line for line in out.splitlines() if line.rstrip().endswith(REGRESSED)]
    assert len(regressed) == 1 and "vllm_cuda" in regressed[0] and "-50.0%" in regressed[0]
    assert main(["compare", base, new, "--providers", "vllm_cuda"]) == 1


def test_regression_of_ours_fails(tmp_path, capsys):
    new_rows = copy.deepcopy(NEW)
    new_rows[128]["qbench_cuda"] = _timed(12.0)
    base = _write(tmp_path, "base.json", _document(BASE))
    new = _write(tmp_path, "new.json", _document(new_rows))
    assert main(["compare", base, new]) == 1
    assert "1 improved, 1 regressed, 1 unchanged" in capsys.readouterr().out
    # the same files the other way round: what regressed has improved and vice versa
    assert main(["compare", new, base]) == 1


def test_a_mismatch_of_ours_is_broken_and_fails(tmp_path, capsys):
    new_rows = copy.deepcopy(NEW)
    new_rows[128]["qbench_cuda"] = _untimed()
    base = _write(tmp_path, "base.json", _document(BASE))
    new = _write(tmp_path, "new.json", _document(new_rows))
    assert main(["compare", base, new]) == 1
    out = capsys.readouterr().out
    assert "1 broken" in out
    assert any(line.rstrip().endswith(BROKEN) and "MISMATCH" in line for line in out.splitlines())


def test_different_gpus_warn_first(tmp_path, capsys):
    base = _write(tmp_path, "base.json", _document(BASE))
    new = _write(tmp_path, "new.json", _document(BASE, gpu="NVIDIA H100 80GB HBM3"))
    assert main(["compare", base, new]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("warning: different GPUs")
    assert "NVIDIA H200" in first and "NVIDIA H100 80GB HBM3" in first


def test_a_suite_file_matches_its_report_in_a_default_suite_file(tmp_path, capsys):
    quant = json.loads((FIXTURES / "quant_h200.json").read_text())
    gemm = json.loads((FIXTURES / "gemm_synthetic.json").read_text())
    default = {
        "suite": "default", "environment": quant["environment"], "ceilings": quant["ceilings"],
        "reports": {"quant": quant, "gemm": gemm}, "summary": [],
    }
    rows, only_base, only_new = compare_documents(quant, default)
    assert len(rows) == 30 * 2  # every configuration x our CUDA and Triton providers
    assert {r.status for r in rows} == {UNCHANGED}
    assert only_base == [] and len(only_new) == 8  # the GEMM configurations

    base = _write(tmp_path, "quant.json", quant)
    new = _write(tmp_path, "default.json", default)
    assert main(["compare", base, new]) == 0
    assert "only in new: 8 configurations: gemm: M=1 N=6144 K=4096 qkv_proj" in (
        capsys.readouterr().out
    )


def test_gemm_files_gate_on_the_providers_the_suite_calls_ours():
    gemm = json.loads((FIXTURES / "gemm_synthetic.json").read_text())
    slower = copy.deepcopy(gemm)
    for result in slower["results"]:
        for measurement in result["providers"].values():
            if measurement["median_ms"] is not None:
                for key in ("median_ms", "p20_ms", "p80_ms"):
                    measurement[key] *= 1.5
    rows, _, _ = compare_documents(gemm, slower)
    assert {r.provider for r in rows} == {"int8-tensor-w-tensor-a", "int8-channel-w-token-a"}
    assert {r.status for r in rows} == {REGRESSED}
    rows, _, _ = compare_documents(gemm, slower, providers="all")
    assert {r.provider for r in rows} == set(gemm["settings"]["providers"])


def test_unreadable_files_are_exit_2(tmp_path, capsys):
    base = _write(tmp_path, "base.json", _document(BASE))
    csv = tmp_path / "new.csv"
    csv.write_text("m,k\n1,2\n")
    assert main(["compare", base, str(csv)]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["compare", base, str(tmp_path / "missing.json")]) == 2
