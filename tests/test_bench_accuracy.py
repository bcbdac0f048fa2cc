"""`python -m qbench_ext.bench accuracy`: the metrics against hand-computed values, the inputs,
and the command on the CPU references."""

from __future__ import annotations

import json
import math

import pytest
import torch

from qbench_ext.bench import accuracy, main
from qbench_ext.bench.accuracy import (
    DISTRIBUTIONS,
    GEMM_VARIANTS,
    QUANT_VARIANTS,
    activations,
    dequantize,
    error_metrics,
)


def test_metrics_by_hand():
    ref = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    approx = torch.tensor([[3.3, 3.6], [0.0, 0.0]])  # error (0.3, -0.4): norm 0.5
    metrics = error_metrics(approx, ref)
    assert metrics["rel_fro"] == pytest.approx(0.1)  # 0.5 / 5
    assert metrics["snr_db"] == pytest.approx(20.0)  # 10 log10(25 / 0.25)
    assert metrics["max_abs"] == pytest.approx(0.4)


def test_metrics_without_error():
    x = torch.randn(4, 4)
    assert error_metrics(x, x) == {"rel_fro": 0.0, "snr_db": math.inf, "max_abs": 0.0}


def test_activations():
    generator = torch.Generator().manual_seed(0)
    gaussian = activations("gaussian", 256, 1024, generator).float()
    heavy = activations("student_t3", 256, 1024, generator).float()
    outliers = activations("outliers", 256, 1024, generator).float()
    for x in (gaussian, heavy, outliers):
        assert x.shape == (256, 1024) and torch.isfinite(x).all()

    def kurtosis(x):
        x = x - x.mean()
        return float((x**4).mean() / (x**2).mean() ** 2)

    assert kurtosis(gaussian) == pytest.approx(3.0, abs=0.2)
    assert kurtosis(heavy) > 6
    column_scale = outliers.abs().mean(0)
    big = column_scale > 20 * column_scale.median()
    assert int(big.sum()) == 4
    assert float(column_scale[big].min() / column_scale.median()) > 30
    with pytest.raises(ValueError):
        activations("uniform", 2, 2, generator)


def test_int8_group_quant_error_is_within_half_a_step():
    x = activations("gaussian", 8, 256, torch.Generator().manual_seed(1))
    variant = next(v for v in QUANT_VARIANTS if v.name == "int8 G=128")
    deq = dequantize(x, variant, "cpu")
    step = x.float().reshape(8, 2, 128).abs().amax(-1, keepdim=True) / 127
    err = (deq - x.float()).reshape(8, 2, 128).abs()
    assert bool((err <= step / 2 * (1 + 1e-5)).all())  # ties, and fp32 rounding of q * s


def test_finer_scales_are_more_accurate_on_outliers():
    results = accuracy.measure((32, 512, 256), "cpu", seed=0)
    rel = {
        (r["config"]["variant"], r["config"]["distribution"]): r["metrics"]["rel_fro"]
        for r in results
    }
    assert len(results) == len(DISTRIBUTIONS) * (len(QUANT_VARIANTS) + len(GEMM_VARIANTS))
    for dist in DISTRIBUTIONS:
        assert rel[("int8 G=128", dist)] <= rel[("int8 per token", dist)] <= rel[("int8 per tensor", dist)]
        assert rel[("bf16 (no quantization)", dist)] < rel[("int8 W per channel, A per token", dist)]
    assert rel[("int8 W per channel, A per token", "outliers")] < rel[
        ("int8 W per tensor, A per tensor", "outliers")
    ]


def test_the_command_runs_on_the_cpu(tmp_path, capsys):
    out = tmp_path / "acc.json"
    assert main(["accuracy", "--device", "cpu", "--size", "16x256x128", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "M=16 tokens, K=256, N=128, on cpu" in printed
    assert "fp8 G=64 ue8m0" in printed and "int8 W per channel, A per token" in printed
    document = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))
    assert document["suite"] == "accuracy" and document["settings"]["device"] == "cpu"
    assert len(document["results"]) == 3 * (8 + 5)
    first = document["results"][0]
    assert first["config"] == {"kind": "group_quant", "variant": "fp8 G=64", "distribution": "gaussian"}
    assert set(first["metrics"]) == {"rel_fro", "snr_db", "max_abs"}
    assert document["environment"]["gpu_name"] in (None, document["environment"]["gpu_name"])


def test_quick_is_small(capsys):
    assert main(["accuracy", "--device", "cpu", "--quick"]) == 0
    assert "M=32 tokens, K=512, N=512" in capsys.readouterr().out


def test_cuda_without_a_gpu_is_exit_2(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["accuracy", "--device", "cuda", "--quick"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


@pytest.mark.parametrize("size", ["16x100x128", "16x256", "0x256x128", "16x256x130"])
def test_bad_size_is_a_usage_error(size):
    with pytest.raises(SystemExit) as exit_info:
        main(["accuracy", "--size", size])
    assert exit_info.value.code == 2
