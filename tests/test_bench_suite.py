"""The default suite (`python -m qbench_ext.bench` without a suite): plan, no-GPU exit, and
Ctrl-C, with the GPU parts replaced by fakes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qbench_ext.bench import SUITES, main
from qbench_ext.bench import quant as quant_suite
from qbench_ext.bench import suite as default_suite
from qbench_ext.bench.results import write_results

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _no_gpu_please(*args, **kwargs):
    raise AssertionError("--dry-run touched the GPU")


def test_dry_run_prints_every_suites_plan_without_a_gpu(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", _no_gpu_please)
    monkeypatch.setattr(torch.cuda, "_lazy_init", _no_gpu_please)
    assert main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("default suite: ceilings, then ")
    assert "INT8 GEMM 8192^3" in out
    for name in SUITES:
        assert f"== {name}: python -m qbench_ext.bench {name}" in out
    assert "quant suite: 70 configurations x 5 providers" in out


def test_quick_dry_run(capsys):
    assert main(["--quick", "--dry-run", "--out", "all.json"]) == 0
    out = capsys.readouterr().out
    assert "default suite (quick)" in out and "results: all.json" in out
    assert "== quant: python -m qbench_ext.bench quant --shapes 32x128 8192x7168 --group-sizes 128" in out
    assert "quant suite: 10 configurations x 5 providers" in out
    if "gemm" in SUITES:
        assert "== gemm: python -m qbench_ext.bench gemm --quick" in out


def test_module_dry_run():
    done = subprocess.run(
        [sys.executable, "-m", "qbench_ext.bench", "--dry-run"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("default suite")


def test_without_a_gpu_it_says_so_in_one_line(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "no CUDA GPU is available" in captured.err


def test_out_must_be_json():
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", "all.csv"])
    assert exit_info.value.code == 2


def test_subcommands_still_parse():
    from qbench_ext.bench import build_parser

    assert build_parser().parse_args(["quant", "--dry-run"]).dry_run
    with pytest.raises(SystemExit):
        build_parser().parse_args([])


@pytest.fixture
def fake_gpu(monkeypatch):
    """The default suite with fakes for the GPU: ceilings, environment, and a quant suite
    that 'measures' by writing the H200 fixture."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        default_suite, "collect_environment", lambda: {"gpu_name": "NVIDIA H200"}
    )

    class FakeCeilings:
        def as_dict(self):
            return {"copy_gbps": 4000.0, "empty_kernel_median_us": 0.5,
                    "empty_kernel_timing": "cuda-graph"}

    monkeypatch.setattr(default_suite, "measure_ceilings", lambda **kw: FakeCeilings())
    monkeypatch.setattr(
        default_suite, "measure_matrix_rates",
        lambda: {"matrix_size": 8192, "bf16_tflops": 700.0, "int8_tops": 1400.0},
    )
    calls = []

    def fake_quant(args):
        calls.append(args)
        write_results(args.out, json.loads((FIXTURES / "quant_h200.json").read_text()))
        return 0

    monkeypatch.setattr(quant_suite, "run", fake_quant)
    return calls


def _interrupt(args):
    raise KeyboardInterrupt


def test_runs_every_suite_and_writes_one_document(fake_gpu, tmp_path, capsys, monkeypatch):
    for name, module in SUITES.items():
        if name != "quant":  # other suites: an empty report
            monkeypatch.setattr(module, "run", lambda args: 0)
    out = tmp_path / "all.json"
    assert main(["--quick", "--out", str(out)]) == 0
    assert fake_gpu[0].shapes == [(32, 128), (8192, 7168)] and fake_gpu[0].group_sizes == [128]
    printed = capsys.readouterr().out
    assert "matrix rates at 8192^3: BF16 cuBLAS 700 TFLOP/s" in printed
    assert "per-token-group FP8" in printed and "per-token-group INT8" in printed
    document = json.loads(out.read_text())
    assert document["suite"] == "default" and document["interrupted"] is None
    assert document["ceilings"]["int8_tops"] == 1400.0
    assert list(document["reports"]) == ["quant"]
    assert {s["family"] for s in document["summary"]} == {
        "per-token-group FP8", "per-token-group INT8",
    }


def test_ctrl_c_keeps_what_was_measured(fake_gpu, tmp_path, capsys, monkeypatch):
    if len(SUITES) < 2:  # interrupt the only suite: nothing but the ceilings is kept
        monkeypatch.setattr(quant_suite, "run", _interrupt)
        expected_reports = []
    else:
        for name, module in SUITES.items():
            if name != "quant":
                monkeypatch.setattr(module, "run", _interrupt)
        expected_reports = ["quant"]
    out = tmp_path / "all.json"
    assert main(["--out", str(out)]) == default_suite.EXIT_INTERRUPTED
    captured = capsys.readouterr()
    assert "interrupted during" in captured.err
    assert "summary" in captured.out
    document = json.loads(out.read_text())
    assert document["interrupted"] is not None
    assert list(document["reports"]) == expected_reports
    assert document["ceilings"]["copy_gbps"] == 4000.0


def test_git_commit_falls_back_to_the_environment_variable(monkeypatch):
    from qbench_ext.bench import environment

    monkeypatch.setattr(environment, "_command_output", lambda *a, **kw: None)  # no git
    monkeypatch.setenv(environment.GIT_COMMIT_ENV, "0123abcd")
    assert environment._git_state() == {"git_commit": "0123abcd", "git_dirty": None}
    monkeypatch.delenv(environment.GIT_COMMIT_ENV)
    assert environment._git_state() == {"git_commit": None, "git_dirty": None}


def test_gemm_summary_compares_only_peers_doing_the_same_job():
    cfg = {"dtype": "int8", "w": "channel", "a": "token"}
    providers = {
        "int8-channel-w-token-a": {**cfg, "no_a_quant": False, "backend": "qbench"},
        "vllm-int8-channel-w-token-a": {**cfg, "no_a_quant": False, "backend": "vllm"},
        # Faster, but skips the activation quantisation: not the same job.
        "vllm-int8-channel-w-token-a-noquant": {**cfg, "no_a_quant": True, "backend": "vllm"},
    }
    times = {"int8-channel-w-token-a": 2.0, "vllm-int8-channel-w-token-a": 3.0,
             "vllm-int8-channel-w-token-a-noquant": 1.0}
    report = {
        "settings": {"ours": ["int8-channel-w-token-a"], "providers": providers},
        "results": [{
            "config": {"m": 16, "n": 4096, "k": 4096},
            "providers": {name: {"median_ms": t} for name, t in times.items()},
        }],
    }
    (entry,) = default_suite.summarize({"gemm": report})
    assert entry["speedup_vs_best_peer"]["geomean"] == pytest.approx(1.5)


@pytest.mark.gpu
def test_quick_default_suite_runs_end_to_end_on_the_gpu(cuda, tmp_path, capsys):
    out = tmp_path / "quick.json"
    assert main(["--quick", "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["interrupted"] is None and set(document["reports"]) == set(SUITES)
    assert document["ceilings"]["copy_gbps"] > 0 and document["ceilings"]["int8_tops"] > 0
    families = {entry["family"] for entry in document["summary"]}
    assert {"per-token-group FP8", "per-token-group INT8", "INT8 GEMM"} <= families


def test_ctrl_c_inside_a_suite_keeps_its_partial_results(fake_gpu, tmp_path, monkeypatch):
    # The gemm suite measured something, wrote it, then was interrupted (as its loop does).
    partial = {"suite": "gemm", "settings": {}, "results": [], "interrupted": True}

    def interrupted_gemm(args):
        write_results(args.out, partial)
        raise KeyboardInterrupt

    monkeypatch.setattr(SUITES["gemm"], "run", interrupted_gemm)
    out = tmp_path / "all.json"
    assert main(["--out", str(out)]) == default_suite.EXIT_INTERRUPTED
    document = json.loads(out.read_text())
    assert document["interrupted"] == "gemm"
    assert document["reports"]["gemm"]["interrupted"] is True
    assert "quant" in document["reports"]
