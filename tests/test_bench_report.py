"""`python -m qbench_ext.bench report`: charts and report.md from saved files (needs
matplotlib; those tests skip without it), and the summary they share with the default suite."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from qbench_ext.bench import main
from qbench_ext.bench.report import NEEDS_MATPLOTLIB
from qbench_ext.bench.results import read_results, suite_reports, write_results
from qbench_ext.bench.suite import format_summary, summarize

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

needs_matplotlib = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None,
    reason="report needs matplotlib (pip install 'qbench-ext[plot]')",
)


def _load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def _default_document() -> dict:
    quant, gemm = _load("quant_h200.json"), _load("gemm_synthetic.json")
    ceilings = {**quant["ceilings"], "matrix_size": 8192, "bf16_tflops": 760.0, "int8_tops": 1450.0}
    reports = {"quant": quant, "gemm": gemm}
    return {
        "suite": "default",
        "environment": quant["environment"],
        "settings": {"quick": False, "suites": ["quant", "gemm"]},
        "ceilings": ceilings,
        "reports": reports,
        "exit_status": {"quant": 0, "gemm": 0},
        "summary": summarize(reports, ceilings),
        "interrupted": None,
    }


# ----------------------------------------------------------------------------- schema


def test_default_suite_document_round_trips(tmp_path):
    document = _default_document()
    path = tmp_path / "all.json"
    write_results(path, document)
    again = read_results(path)
    assert again == document
    assert list(suite_reports(again)) == ["quant", "gemm"]
    assert suite_reports(_load("quant_h200.json")).keys() == {"quant"}
    with pytest.raises(ValueError):
        suite_reports({"suite": "x"})


# ----------------------------------------------------------------------------- summary


def _measured(us):
    return {"check": "exact", "median_ms": us * 1e-3, "p20_ms": None, "p80_ms": None,
            "gbps": None, "timing": "cuda-graph", "note": None}


def test_summary_by_hand():
    # two FP8 configurations: ours 2x faster than the best peer in one, 0.5x in the other;
    # 1e6 bytes in 1 us = 1000 GB/s = 25% of 4000 GB/s, and 12.5% in 2 us.
    config = {"dtype": "fp8", "m": 1000, "k": 128, "group_size": 128,
              "column_major_scales": False, "use_ue8m0": False, "bytes": 10**6}
    report = {
        "suite": "quant",
        "results": [
            {"config": config, "providers": {
                "qbench_cuda": _measured(1.0), "qbench_triton": _measured(0.1),
                "vllm_cuda": _measured(2.0), "torch_compile": _measured(3.0)}},
            {"config": {**config, "m": 2000}, "providers": {
                "qbench_cuda": _measured(2.0), "qbench_triton": _measured(0.1),
                "vllm_cuda": _measured(1.0), "torch_compile": {"median_ms": None}}},
            {"config": {**config, "dtype": "int8"}, "providers": {
                "qbench_cuda": _measured(1.0), "vllm_cuda": {"median_ms": None}}},
        ],
    }
    fp8, int8 = summarize({"quant": report}, {"copy_gbps": 4000.0})
    assert (fp8["family"], fp8["ours"], fp8["configurations"]) == ("per-token-group FP8", "qbench_cuda", 2)
    speed = fp8["speedup_vs_best_peer"]
    assert speed["n"] == 2
    assert speed["geomean"] == pytest.approx(1.0)  # sqrt(2 * 0.5): our Triton is not a peer
    assert speed["worst"] == pytest.approx(0.5) and speed["worst_config"] == "2000x128 G=128 fp8"
    share = fp8["share_of_ceiling"]
    assert share["geomean"] == pytest.approx((0.25 * 0.125) ** 0.5)
    assert (share["worst"], share["best"]) == (pytest.approx(0.125), pytest.approx(0.25))
    assert int8["speedup_vs_best_peer"] is None  # no peer timed
    assert int8["share_of_ceiling"]["n"] == 1
    text = format_summary([fp8, int8])
    assert "per-token-group FP8" in text and "0.50x" in text and "12.5%" in text


def test_summary_of_the_h200_fixture_and_a_gemm_report():
    document = _default_document()
    families = {(s["family"], s["ours"]): s for s in document["summary"]}
    assert set(families) == {
        ("per-token-group FP8", "qbench_cuda"),
        ("per-token-group INT8", "qbench_cuda"),
        ("INT8 GEMM", "int8-tensor-w-tensor-a"),
        ("INT8 GEMM", "int8-channel-w-token-a"),
    }
    fp8 = families[("per-token-group FP8", "qbench_cuda")]
    assert fp8["configurations"] == 24 and fp8["speedup_vs_best_peer"]["n"] == 24
    assert fp8["ceiling"]["name"] == "copy bandwidth"
    gemm = families[("INT8 GEMM", "int8-channel-w-token-a")]
    assert gemm["ceiling"]["value"] == 1450.0
    # Only vLLM's GEMM does the same job (BF16 does not, though it is faster at M=1); vLLM is
    # n/a at M=1, so 6 of the 8 configurations compare, the worst at M=16.
    assert gemm["speedup_vs_best_peer"]["n"] == 6
    assert gemm["speedup_vs_best_peer"]["worst_config"] == "M=16 N=6144 K=4096 qkv_proj"
    assert families[("INT8 GEMM", "int8-tensor-w-tensor-a")]["speedup_vs_best_peer"] is None


# ----------------------------------------------------------------------------- rendering


def _png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC


@needs_matplotlib
def test_quant_report(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(FIXTURES / "quant_h200.json"), "--dir", str(out)]) == 0
    assert "report.md" in capsys.readouterr().out
    assert _png(out / "quant_gbps.png") and _png(out / "quant_speedup.png")
    assert not (out / "gemm_tflops.png").exists()
    md = (out / "report.md").read_text()
    assert "![quant_gbps](quant_gbps.png)" in md and "![quant_speedup](quant_speedup.png)" in md
    assert "| configuration | qbench_cuda (us) |" in md
    assert "| 8192x7168 G=128 int8 |" in md
    assert "vs vllm_cuda" in md and "vs vllm_triton" not in md  # never timed: no column
    assert "- GPU: NVIDIA H200" in md and "copy bandwidth: 4249 GB/s" in md


@needs_matplotlib
def test_gemm_report(tmp_path):
    out = tmp_path / "g"
    assert main(["report", str(FIXTURES / "gemm_synthetic.json"), "--dir", str(out)]) == 0
    assert _png(out / "gemm_tflops.png")
    md = (out / "report.md").read_text()
    assert "![gemm_tflops](gemm_tflops.png)" in md
    assert "| M=1024 N=6144 K=4096 qkv_proj |" in md
    assert "INT8 int8_scaled_mm at 8192^3: 1450 TOPS" in md


@needs_matplotlib
def test_default_suite_report_has_both_and_the_summary(tmp_path):
    path = tmp_path / "all.json"
    write_results(path, _default_document())
    assert main(["report", str(path)]) == 0
    out = tmp_path / "all-report"  # the default directory
    for image in ("quant_gbps.png", "quant_speedup.png", "gemm_tflops.png"):
        assert _png(out / image)
    md = (out / "report.md").read_text()
    assert "## Summary" in md and "## quant" in md and "## gemm" in md
    assert "per-token-group INT8" in md


def test_without_matplotlib_it_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    status = main(["report", str(FIXTURES / "quant_h200.json"), "--dir", str(tmp_path)])
    assert status == 2
    assert capsys.readouterr().err.strip() == NEEDS_MATPLOTLIB
    assert not any(tmp_path.iterdir())


@needs_matplotlib
def test_unreadable_results_are_exit_2(tmp_path, capsys):
    path = tmp_path / "x.json"
    path.write_text("{}")
    assert main(["report", str(path), "--dir", str(tmp_path / "r")]) == 2
    assert "cannot read" in capsys.readouterr().err
