"""The GEMM suite's providers, model shapes, command line, plan and checks: all on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qbench_ext import reference_gemm, reference_int8_quant
from qbench_ext.bench import build_parser, main
from qbench_ext.bench import gemm as gemm_suite
from qbench_ext.bench.timing import calls_in_turn
from qbench_ext.bench.gemm import PROVIDER_CFGS, build_int8_runner
from qbench_ext.bench.model_shapes import MODEL_CONFIGS, linear_layers, resolve_model, weight_shapes
from qbench_ext.bench.peers import ProviderUnavailable

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "bench_int8_gemm.py"
LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.fixture
def no_vllm(monkeypatch):
    """No vLLM anywhere: the plan's defaults are then ours and torch's only."""
    monkeypatch.delenv("QBENCH_VLLM_LIB", raising=False)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)


@pytest.fixture
def no_gpu_please(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("--dry-run touched the GPU")

    monkeypatch.setattr(torch.cuda, "is_available", refuse)
    monkeypatch.setattr(torch.cuda, "_lazy_init", refuse)


def _plan_header(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("gemm suite:"))


def _planned_shapes(output: str) -> list[str]:
    lines = output.splitlines()
    start = lines.index("shapes:") + 1
    return [line.strip() for line in lines[start:] if line.startswith("  ")]


# ----------------------------------------------------------------------------- providers


INT8_CONFIGS = [f"int8-{w}-w-{a}-a" for w in ("tensor", "channel") for a in ("token", "tensor")]


def test_provider_names_and_configurations():
    for base in INT8_CONFIGS:
        w, a = base.split("-")[1], base.split("-")[3]
        for prefix, backend in (("", "qbench"), ("vllm-", "vllm"), ("triton-", "triton")):
            for suffix, no_a_quant in (("", False), ("-noquant", True)):
                cfg = PROVIDER_CFGS[prefix + base + suffix]
                assert (cfg["w"], cfg["a"], cfg["no_a_quant"], cfg["backend"]) == (
                    w, a, no_a_quant, backend
                )
                assert cfg["dtype"] == "int8"
    assert PROVIDER_CFGS["torch-bf16"]["dtype"] == "bf16"
    assert PROVIDER_CFGS["torch-int8-mm"]["backend"] == "torch-int-mm"
    assert PROVIDER_CFGS["torch-fp8-rowwise"]["dtype"] == "fp8"
    assert len(PROVIDER_CFGS) == 1 + 3 * 8 + 2
    assert list(PROVIDER_CFGS)[0] == "torch-bf16"


def test_default_providers():
    seed_defaults = [
        "torch-bf16",
        "int8-tensor-w-tensor-a",
        "int8-channel-w-token-a",
        "int8-tensor-w-tensor-a-noquant",
        "int8-channel-w-token-a-noquant",
    ]
    assert gemm_suite.default_providers(vllm_available=False) == seed_defaults
    assert gemm_suite.default_providers(vllm_available=True) == seed_defaults + [
        "vllm-int8-channel-w-token-a",
        "vllm-int8-channel-w-token-a-noquant",
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"w": "row"},
        {"a": "channel"},
        {"no_a_quant": "yes"},
        {"backend": "cublas"},
        {"dtype": "fp8"},
    ],
)
def test_build_int8_runner_rejects_invalid_configurations(change):
    cfg = {**PROVIDER_CFGS["int8-channel-w-token-a"], **change}
    a, b = torch.randn(32, 64), torch.randn(48, 64)
    with pytest.raises(ValueError):
        build_int8_runner(cfg, a, b, torch.bfloat16, "cpu")


def test_build_int8_runner_rejects_missing_keys_and_bad_operands():
    cfg = PROVIDER_CFGS["int8-channel-w-token-a"]
    with pytest.raises(ValueError, match="no 'backend'"):
        build_int8_runner({k: v for k, v in cfg.items() if k != "backend"},
                          torch.randn(4, 64), torch.randn(16, 64))
    with pytest.raises(ValueError, match="share K"):
        build_int8_runner(cfg, torch.randn(4, 64), torch.randn(16, 32))
    with pytest.raises(ValueError, match="output dtype"):
        build_int8_runner(cfg, torch.randn(4, 64), torch.randn(16, 64), torch.float32)


def test_torch_int_mm_needs_more_than_16_rows():
    with pytest.raises(ProviderUnavailable, match="M > 16"):
        build_int8_runner(PROVIDER_CFGS["torch-int8-mm"], torch.randn(16, 64),
                          torch.randn(32, 64))


class _CpuInt8Ops:
    """The references standing in for our CUDA ops, so the runner's plumbing runs on a CPU."""

    def __init__(self, triton: bool = False):
        pass

    def per_token(self, x):
        q, s, _ = reference_int8_quant.scaled_int8_quant(x)
        return q, s

    def per_tensor(self, x, scale):
        return reference_int8_quant.scaled_int8_quant(x, scale)[0]

    def scaled_mm(self, aq, b, sa, sb, out):
        out.copy_(reference_gemm.int8_scaled_mm(aq, b, sa, sb, out.dtype))
        return out


@pytest.mark.parametrize("name", [*INT8_CONFIGS, *(c + "-noquant" for c in INT8_CONFIGS)])
def test_int8_runner_quantizes_as_configured_and_passes_its_check(name, monkeypatch):
    monkeypatch.setattr(gemm_suite, "_QbenchInt8Ops", _CpuInt8Ops)
    cfg = PROVIDER_CFGS[name]
    a, b = torch.randn(24, 64, dtype=torch.bfloat16), torch.randn(32, 64, dtype=torch.bfloat16)
    runner = build_int8_runner(cfg, a, b, torch.bfloat16, "cpu")
    out = runner()
    assert out.shape == (24, 32) and out.dtype == torch.bfloat16
    aq, sa, wq, sw = runner.operands()
    assert (aq.dtype, wq.dtype) == (torch.int8, torch.int8)
    assert wq.shape == (32, 64) and aq.shape == (24, 64)
    assert sa.numel() == (24 if cfg["a"] == "token" else 1)
    assert sw.numel() == (32 if cfg["w"] == "channel" else 1)
    if cfg["a"] == "tensor":
        assert torch.equal(sa.reshape(()), a.float().abs().max() / 127)
    check, rel, detail = gemm_suite.check_output(runner, out)
    assert (check, detail) == ("ok", None)
    assert rel < 1e-2
    # The INT8 result approximates the BF16 product.
    exact = a.double() @ b.double().t()
    assert (out.double() - exact).abs().max() < 0.05 * exact.abs().max()


def test_check_catches_a_wrong_output(monkeypatch):
    monkeypatch.setattr(gemm_suite, "_QbenchInt8Ops", _CpuInt8Ops)
    runner = build_int8_runner(PROVIDER_CFGS["int8-channel-w-token-a"],
                               torch.randn(8, 64), torch.randn(16, 64), torch.bfloat16, "cpu")
    out = runner().clone()
    out[3, 5] += 1.0
    check, _, detail = gemm_suite.check_output(runner, out)
    assert check == "MISMATCH" and detail.startswith("1 of 128 outputs more than one ulp")
    out[0, 0] = float("nan")
    assert "1 NaN outputs" in gemm_suite.check_output(runner, out)[2]


def test_bf16_runner_and_its_relative_check():
    a, b = torch.randn(8, 64), torch.randn(16, 64)
    runner = gemm_suite.build_runner("torch-bf16", a, b)
    out = runner()
    assert gemm_suite.check_output(runner, out)[0] == "ok"
    assert gemm_suite.check_output(runner, out * 1.05)[0] == "MISMATCH"


def test_iterations_aim_at_the_measurement_time():
    assert gemm_suite.iterations_for(0.005, 100) == (10, 100)  # tiny: capped
    assert gemm_suite.iterations_for(5.0, 100) == (4, 20)  # large: ~100 ms of replays
    assert gemm_suite.iterations_for(50.0, 100) == (1, 10)  # huge: the floor


# ----------------------------------------------------------------------------- shapes


def test_default_model_shapes():
    assert weight_shapes(LLAMA_8B) == [(4096, 6144), (4096, 4096), (4096, 28672), (14336, 4096)]
    assert [s.layer for s in linear_layers(LLAMA_8B)] == [
        "qkv_proj", "o_proj", "gate_up_proj", "down_proj"
    ]


@pytest.mark.parametrize("model", list(MODEL_CONFIGS))
def test_four_layers_per_model_from_its_config(model):
    c = MODEL_CONFIGS[model]
    head_dim = c.hidden_size // c.num_attention_heads
    assert weight_shapes(model) == [
        (c.hidden_size, (c.num_attention_heads + 2 * c.num_key_value_heads) * head_dim),
        (c.num_attention_heads * head_dim, c.hidden_size),
        (c.hidden_size, 2 * c.intermediate_size),
        (c.intermediate_size, c.hidden_size),
    ]


def test_model_configs():
    llama2_7b = MODEL_CONFIGS["meta-llama/Llama-2-7b-hf"]
    assert weight_shapes("meta-llama/Llama-2-7b-hf")[0] == (4096, 3 * 4096)  # no GQA
    assert llama2_7b.head_dim == 128
    assert weight_shapes("Qwen/Qwen2.5-7B-Instruct") == [
        (3584, 4608), (3584, 3584), (3584, 37888), (18944, 3584)
    ]
    assert weight_shapes("meta-llama/Llama-3.1-405B-Instruct")[0] == (16384, 18432)


def test_tp_splits_n_of_column_parallel_and_k_of_row_parallel_layers():
    assert weight_shapes(LLAMA_8B, 2) == [(4096, 3072), (2048, 4096), (4096, 14336), (7168, 4096)]
    assert weight_shapes("meta-llama/Llama-3.1-70B-Instruct", 8) == [
        (8192, 1280), (1024, 8192), (8192, 7168), (3584, 8192)
    ]
    assert [s.split for s in linear_layers(LLAMA_8B, 4)] == ["n", "k", "n", "k"]


@pytest.mark.parametrize("tp", [3, 0, -2])
def test_tp_that_does_not_divide_raises(tp):
    with pytest.raises(ValueError):
        weight_shapes(LLAMA_8B, tp)


def test_model_names_resolve():
    assert resolve_model("Llama-3.1-8B-Instruct") == LLAMA_8B
    assert resolve_model("qwen2.5-72b-instruct") == "Qwen/Qwen2.5-72B-Instruct"
    with pytest.raises(ValueError, match="unknown model"):
        resolve_model("gpt-2")


# ----------------------------------------------------------------------------- command line


def test_gemm_defaults():
    args = build_parser().parse_args(["gemm"])
    assert args.models == [LLAMA_8B]
    assert args.tp_sizes == [1]
    assert args.batch_sizes is None and args.providers is None
    assert args.measure_ms == 100.0
    assert args.out is None and args.plot_dir is None and args.vllm_lib is None
    assert not args.dry_run and not args.quick and not args.rotate_weights


def test_gemm_flags():
    args = build_parser().parse_args(
        ["gemm", "--models", "Mistral-7B-v0.1", "Qwen/Qwen2.5-7B-Instruct", "--tp-sizes", "1",
         "2", "4", "--batch-sizes", "1", "16", "--providers", "torch-bf16", "torch-fp8-rowwise",
         "--out", "g.csv", "--plot-dir", "plots", "--vllm-lib", "/x/lib.so", "--dry-run",
         "--quick", "--measure-ms", "50", "--rotate-weights"]
    )
    assert args.models == ["mistralai/Mistral-7B-v0.1", "Qwen/Qwen2.5-7B-Instruct"]
    assert args.tp_sizes == [1, 2, 4]
    assert args.batch_sizes == [1, 16]
    assert args.providers == ["torch-bf16", "torch-fp8-rowwise"]
    assert (args.out, args.plot_dir, args.vllm_lib) == ("g.csv", "plots", "/x/lib.so")
    assert args.dry_run and args.quick and args.measure_ms == 50.0 and args.rotate_weights


@pytest.mark.parametrize(
    "n, k, l2_bytes, copies",
    [
        (6144, 4096, 50 << 20, 5),  # 25.2 MB a copy: 5 exceed 2 x 52.4 MB
        (4096, 4096, 50 << 20, 7),
        (28672, 4096, 50 << 20, 1),  # one copy is past twice the L2 already
        (16, 16, 50 << 20, 8),  # at most MAX_WEIGHT_COPIES
    ],
)
def test_weight_copies_exceed_twice_the_l2(n, k, l2_bytes, copies):
    assert gemm_suite.weight_copies(n, k, l2_bytes) == copies
    if copies < gemm_suite.MAX_WEIGHT_COPIES:
        assert copies * n * k > 2 * l2_bytes >= (copies - 1) * n * k


def test_rotation_calls_the_runners_in_turn():
    calls = []
    rotation = calls_in_turn([lambda i=i: calls.append(i) for i in range(3)])
    for _ in range(7):
        rotation()
    assert calls == [0, 1, 2, 0, 1, 2, 0]


@pytest.mark.parametrize(
    "argv",
    [
        ["--models", "gpt-2"],
        ["--tp-sizes", "0"],
        ["--batch-sizes", "-1"],
        ["--providers", "int8-row-w-token-a"],
        ["--out", "results.txt"],
        ["--measure-ms", "0"],
    ],
)
def test_bad_values_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["gemm", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- the plan


@pytest.mark.parametrize(
    "argv, shapes, batch_sizes, providers",
    [
        ([], 4, 11, 5),
        (["--quick"], 1, 4, 5),
        (["--tp-sizes", "1", "2", "4"], 12, 11, 5),
        (["--models", "Llama-3.1-8B-Instruct", "Mistral-7B-v0.1"], 4, 11, 5),  # same shapes
        (["--models", "Llama-2-7b-hf", "Llama-2-13b-hf", "--batch-sizes", "16", "64"], 8, 2, 5),
        (["--providers", "all"], 4, 11, len(PROVIDER_CFGS)),
        (["--providers", "torch-bf16", "torch-int8-mm", "--quick"], 1, 4, 2),
        (["--quick", "--batch-sizes", "8"], 1, 1, 5),
    ],
)
def test_dry_run_counts(argv, shapes, batch_sizes, providers, capsys, no_vllm, no_gpu_please):
    assert main(["gemm", "--dry-run", *argv]) == 0
    out = capsys.readouterr().out
    total = shapes * batch_sizes * providers
    header = _plan_header(out)
    assert f"= {total} measurement" in header
    assert header.startswith(f"gemm suite: {shapes} shape")
    assert f" x {batch_sizes} batch size" in header and f" x {providers} provider" in header
    assert len(_planned_shapes(out)) == shapes


def test_dry_run_lists_shapes_batch_sizes_and_providers(capsys, no_vllm):
    main(["gemm", "--dry-run"])
    out = capsys.readouterr().out
    assert _planned_shapes(out) == [
        f"N=6144 K=4096: {LLAMA_8B} TP1 qkv_proj",
        f"N=4096 K=4096: {LLAMA_8B} TP1 o_proj",
        f"N=28672 K=4096: {LLAMA_8B} TP1 gate_up_proj",
        f"N=4096 K=14336: {LLAMA_8B} TP1 down_proj",
    ]
    assert "batch sizes (M): 1 16 64 128 256 512 1024 2048 4096 8192 16384" in out
    assert ("providers: torch-bf16, int8-tensor-w-tensor-a, int8-channel-w-token-a, "
            "int8-tensor-w-tensor-a-noquant, int8-channel-w-token-a-noquant") in out
    assert "vLLM: not available" in out
    assert "weights: one, reused by every call" in out
    main(["gemm", "--dry-run", "--rotate-weights"])
    assert "weights: rotated, copies whose int8 bytes exceed 2x the L2" in capsys.readouterr().out


def test_dry_run_with_vllm_adds_its_default_providers(capsys, tmp_path, monkeypatch):
    library = tmp_path / "_C.abi3.so"
    library.write_bytes(b"")
    monkeypatch.delenv("QBENCH_VLLM_LIB", raising=False)
    main(["gemm", "--dry-run", "--quick", "--vllm-lib", str(library)])
    out = capsys.readouterr().out
    assert "= 28 measurements" in _plan_header(out)  # 1 shape x 4 batch sizes x 7
    assert "vllm-int8-channel-w-token-a, vllm-int8-channel-w-token-a-noquant" in out
    assert f"vLLM: ops from {library}" in out


def test_dry_run_rejects_a_tp_that_does_not_divide(capsys, no_vllm):
    assert main(["gemm", "--dry-run", "--tp-sizes", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "TP 3 does not divide" in err


def test_dry_run_mentions_plots(capsys, no_vllm):
    main(["gemm", "--dry-run", "--quick", "--plot-dir", "somewhere"])
    assert "plots: somewhere/bench_int8_res_n{N}_k{K}.png" in capsys.readouterr().out


def test_benchmark_script_accepts_the_same_flags():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--models", "Llama-3.1-70B-Instruct",
         "--tp-sizes", "4", "--batch-sizes", "1", "16", "128", "--providers", "torch-bf16",
         "int8-channel-w-token-a", "--out", "unused.json", "--plot-dir", "unused"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "= 24 measurements" in _plan_header(done.stdout)  # 4 shapes x 3 x 2
    assert _planned_shapes(done.stdout)[0] == (
        "N=2560 K=8192: meta-llama/Llama-3.1-70B-Instruct TP4 qkv_proj"
    )


def test_without_a_gpu_it_says_so_in_one_line_and_fails(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    status = main(["gemm", "--quick"])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "no CUDA GPU is available" in captured.err


# ----------------------------------------------------------------------------- reporting


def _measurement(check, tflops=None, timing="cuda-graph"):
    return {"check": check, "median_ms": 1.0 if tflops else None, "p20_ms": None,
            "p80_ms": None, "tflops": tflops, "max_err_rel": None,
            "timing": timing if tflops else None, "calls_per_replay": None, "note": None}


def test_shape_table_has_providers_down_and_batch_sizes_across():
    results = [
        {"config": {"m": m}, "providers": {
            "torch-bf16": _measurement("ok", 12.345 * m),
            "int8-channel-w-token-a": _measurement("ok", 20.0 * m, timing="events"),
            "torch-int8-mm": _measurement("n/a"),
            "vllm-int8-channel-w-token-a": _measurement("MISMATCH"),
        }}
        for m in (1, 16)
    ]
    table = gemm_suite.format_shape_table(results, list(results[0]["providers"]))
    lines = table.splitlines()
    assert lines[0].split() == ["provider", "\\", "M", "1", "16"]
    assert lines[2].split() == ["torch-bf16", "12.3", "197.5"]
    assert lines[3].split() == ["int8-channel-w-token-a", "20.0e", "320.0e"]
    assert lines[4].split() == ["torch-int8-mm", "n/a", "n/a"]
    assert lines[5].split() == ["vllm-int8-channel-w-token-a", "mismatch", "mismatch"]


def test_weight_read_table_shows_decode_batch_sizes_of_8_bit_weights():
    n, k, copy_gbps = 6144, 4096, 4000.0
    read_ms = n * k / (copy_gbps * 1e9) * 1e3  # 6.29 us

    def timed(ms):
        return {**_measurement("ok", 1.0), "median_ms": ms}

    results = [
        {"config": {"m": m}, "providers": {
            "torch-bf16": timed(0.02),
            "int8-channel-w-token-a-noquant": timed(read_ms / 0.8 * m ** 0.1),
            "vllm-int8-channel-w-token-a-noquant": _measurement("MISMATCH"),
        }}
        for m in (1, 16, 64)
    ]
    text = gemm_suite.format_weight_read_table(results, list(results[0]["providers"]), n, k, copy_gbps)
    lines = text.splitlines()
    assert lines[0] == ("M <= 16: reading the 8-bit weight (25.2 MB) once at copy bandwidth (4000 GB/s) "
                        "takes 6.29 us; that time as a % of each median:")
    assert lines[1].split() == ["provider", "\\", "M", "1", "16"]  # no M = 64
    assert lines[3].split() == ["int8-channel-w-token-a-noquant", "80.0%", f"{80 / 16 ** 0.1:.1f}%"]
    assert lines[4].split() == ["vllm-int8-channel-w-token-a-noquant", "mismatch", "mismatch"]
    assert len(lines) == 5  # torch-bf16's weight is not 8-bit
    assert gemm_suite.format_weight_read_table(results[2:], list(results[0]["providers"]), n, k, copy_gbps) is None
    assert gemm_suite.format_weight_read_table(results, ["torch-bf16"], n, k, copy_gbps) is None


def test_shape_header_and_plot_name():
    shape = gemm_suite.plan_shapes([LLAMA_8B], [1])[0]
    assert shape.header() == f"{LLAMA_8B}, N=6144 K=4096, BF16 vs INT8 GEMMs TFLOP/s:"
    assert shape.plot_name() == "bench_int8_res_n6144_k4096.png"
    tp2 = gemm_suite.plan_shapes([LLAMA_8B], [2])[0]
    assert tp2.header().startswith(f"{LLAMA_8B} (TP 2), N=3072 K=4096")


# ----------------------------------------------------------------------------- a whole run


def _fake_in_turns(fake_timing):
    def in_turns(fns, *, warmup_iters, bench_iters):
        assert len(warmup_iters) == len(fns)
        return [fake_timing(fn, warmup_iters=w, bench_iters=bench_iters) for fn, w in zip(fns, warmup_iters)]

    return in_turns


def test_rounds_in_turns_keep_the_time_per_provider():
    # About measure_ms of replays per provider on average, each replay at least 0.5 ms.
    assert gemm_suite.rounds_for([0.005, 5.0], 100) == 37  # ceil(2 * 100 / (0.5 + 5.0))
    assert gemm_suite.rounds_for([0.005, 0.005], 100) == 100  # capped
    assert gemm_suite.rounds_for([50.0, 50.0], 100) == 10  # the floor


def test_a_provider_failing_in_turns_does_not_lose_the_others(monkeypatch):
    from qbench_ext.bench.timing import Timing

    def in_turns_fails(fns, **kwargs):
        raise RuntimeError("one graph failed")

    def alone(fn, *, warmup_iters, bench_iters):
        return fn()

    def broken():
        raise ValueError("broken runner")

    monkeypatch.setattr(gemm_suite, "time_graph_replays_in_turns", in_turns_fails)
    monkeypatch.setattr(gemm_suite, "time_graph_replay", alone)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    fine = gemm_suite._Prepared(lambda: Timing(0.5, 0.4, 0.6, "cuda-graph", 1), 0.5, 0.0)
    failing = gemm_suite._Prepared(broken, 0.5, 0.0)
    results = gemm_suite._time_in_turns({"fine": fine, "failing": failing}, flops=10**9, measure_ms=10)
    assert results["fine"]["check"] == "ok" and results["fine"]["tflops"] == pytest.approx(2.0)
    assert results["failing"]["check"] == "error" and "broken runner" in results["failing"]["note"]


@pytest.mark.parametrize("rotate", [False, True])
def test_a_whole_run_on_the_cpu_with_timing_faked(rotate, tmp_path, capsys, monkeypatch, no_vllm):
    """The suite end to end: plan, runners, checks, tables, JSON; only the GPU timing and
    ceilings are faked, and our CUDA ops are stood in for by the references. With
    --rotate-weights, an L2 of 1.25 times the first weight's int8 bytes makes three copies of it."""
    from qbench_ext.bench import ceilings
    from qbench_ext.bench.timing import Timing

    def fake_timing(fn, *, warmup_iters, bench_iters, calls_per_sample=None, **kwargs):
        assert warmup_iters >= 0 and bench_iters >= 1
        fn()
        return Timing(0.5, 0.45, 0.55, "cuda-graph", 1)

    def fake_matrix(name):
        return lambda *a, **k: ceilings.MatrixCeiling(name, 8192, 8192, 8192, 1.5, 1.4, 1.6,
                                                      733.0, "cuda-graph")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(gemm_suite, "DEVICE", "cpu")
    monkeypatch.setattr(gemm_suite, "_QbenchInt8Ops", _CpuInt8Ops)
    monkeypatch.setattr(gemm_suite, "time_events", fake_timing)
    monkeypatch.setattr(gemm_suite, "time_graph_replay", fake_timing)
    monkeypatch.setattr(gemm_suite, "time_graph_replays_in_turns", _fake_in_turns(fake_timing))
    monkeypatch.setattr(gemm_suite, "measure_bf16_matmul", fake_matrix("cuBLAS BF16"))
    monkeypatch.setattr(gemm_suite, "measure_int8_matmul", fake_matrix("qbench INT8"))
    monkeypatch.setattr(
        gemm_suite, "measure_ceilings",
        lambda **k: ceilings.Ceilings(1 << 30, 0.7, 3000.0, 2.5, 2.4, 2.6, "cuda-graph"),
    )
    monkeypatch.setattr(gemm_suite, "collect_environment", lambda: {
        "gpu_name": "Fake GPU", "gpu_sm_count": 1, "driver_version": "0", "torch": "x",
        "triton": "y",
    })
    built = []
    build_runner = gemm_suite.build_runner
    monkeypatch.setattr(gemm_suite, "build_runner", lambda name, a, b, *args, **kwargs: (
        built.append((name, b.data_ptr())) or build_runner(name, a, b, *args, **kwargs)))
    monkeypatch.setattr(gemm_suite, "_l2_bytes", lambda: 384 * 4096 * 5 // 4)
    out_file = tmp_path / "gemm.json"
    status = main(["gemm", "--models", "Llama-2-7b-hf", "--tp-sizes", "32", "--batch-sizes",
                   "1", "32", "--providers", "torch-bf16", "int8-channel-w-token-a",
                   "int8-tensor-w-tensor-a-noquant", "torch-int8-mm", "--out", str(out_file),
                   "--plot-dir", str(tmp_path / "plots"), *(["--rotate-weights"] if rotate else [])])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "ceilings: copy 3000 GB/s; empty kernel 2.50 us; cuBLAS BF16 8192^3 733.0 TFLOP/s" in printed
    header = "meta-llama/Llama-2-7b-hf (TP 32), N=384 K=4096, BF16 vs INT8 GEMMs TFLOP/s:"
    assert header in printed
    table = printed.split(header)[1].splitlines()
    flops_1 = 2 * 1 * 384 * 4096 / 0.5e-3 / 1e12
    assert table[3].split() == ["torch-bf16", f"{flops_1:.3f}", f"{32 * flops_1:.3f}"]
    assert table[6].split()[:2] == ["torch-int8-mm", "n/a"]  # M = 1: _int_mm needs M > 16
    read = "M <= 16: reading the 8-bit weight (1.6 MB) once at copy bandwidth (3000 GB/s) takes 0.52 us"
    assert table[8].startswith(read)
    assert table[11].split() == ["int8-channel-w-token-a", f"{100 * 384 * 4096 / 3000e9 / 0.5e-3:.1f}%"]
    report = json.loads(out_file.read_text())
    assert report["suite"] == "gemm"
    assert report["ceilings"]["int8_tops"] == 733.0 and report["ceilings"]["matrix_size"] == 8192
    assert report["settings"]["ours"] == ["int8-channel-w-token-a", "int8-tensor-w-tensor-a-noquant"]
    assert len(report["results"]) == 4 * 2  # 4 layers x 2 batch sizes
    first = report["results"][0]
    assert first["config"]["n"] == 384 and first["config"]["k"] == 4096 and first["config"]["m"] == 1
    for result in report["results"]:
        for name in ("torch-bf16", "int8-channel-w-token-a", "int8-tensor-w-tensor-a-noquant"):
            measured = result["providers"][name]
            assert measured["check"] == "ok", measured
            assert measured["median_ms"] == 0.5 and measured["tflops"] > 0
    # torch._int_mm is not stood in for: on the CPU it runs or fails, never silently passes.
    assert report["results"][1]["providers"]["torch-int8-mm"]["check"] in ("ok", "error")
    copies = 3 if rotate else 1  # of the first shape; the others' by weight_copies
    assert report["settings"]["rotate_weights"] == rotate
    for r in report["results"]:
        n, k = r["config"]["n"], r["config"]["k"]
        expected = gemm_suite.weight_copies(n, k, 384 * 4096 * 5 // 4) if rotate else 1
        assert r["config"].get("weight_copies", 1) == expected
        assert ("weight_copies" in r["config"]) == rotate
    assert first["config"].get("weight_copies", 1) == copies
    bf16_weights = {ptr for name, ptr in built[:copies] if name == "torch-bf16"}
    assert len(built) >= copies and len(bf16_weights) == copies  # one runner a distinct copy


def test_plots_without_matplotlib_say_so_in_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises
    plan = gemm_suite.GemmPlan(tuple(gemm_suite.plan_shapes([LLAMA_8B], [1])[:1]), (1,),
                               ("torch-bf16",))
    results = [{"config": {"m": 1}, "providers": {"torch-bf16": _measurement("ok", 3.0)}}]
    assert gemm_suite.write_plots(str(tmp_path / "plots"), plan, results) is None
    assert capsys.readouterr().out == "plots need matplotlib (pip install matplotlib)\n"
    assert not (tmp_path / "plots").exists()


# ----------------------------------------------------------------------------- vLLM's ops


@pytest.fixture(scope="module")
def fake_vllm_ops():
    """vLLM's three ops under torch.ops._C with vLLM's schemas (one with an older name for an
    argument), implemented on the CPU by our references."""
    if hasattr(torch.ops._C, "cutlass_scaled_mm"):
        pytest.skip("a real vLLM library is loaded in this process")
    lib = torch.library.Library("_C", "FRAGMENT")
    lib.define("cutlass_scaled_mm(Tensor! out, Tensor a, Tensor b, Tensor a_scales, "
               "Tensor b_scales, Tensor? bias) -> ()")
    lib.define("dynamic_scaled_int8_quant(Tensor! result, Tensor input, Tensor! scale, "
               "Tensor!? azp) -> ()")
    lib.define("static_scaled_int8_quant(Tensor! output, Tensor input, Tensor scale) -> ()")

    def scaled_mm(out, a, b, a_scales, b_scales, bias):
        out.copy_(reference_gemm.int8_scaled_mm(a, b, a_scales, b_scales, out.dtype, bias))

    def dynamic(result, input, scale, azp):
        q, s, _ = reference_int8_quant.scaled_int8_quant(input)
        result.copy_(q)
        scale.copy_(s)

    def static(output, input, scale):
        output.copy_(reference_int8_quant.scaled_int8_quant(input, scale.reshape(1))[0])

    lib.impl("cutlass_scaled_mm", scaled_mm, "CPU")
    lib.impl("dynamic_scaled_int8_quant", dynamic, "CPU")
    lib.impl("static_scaled_int8_quant", static, "CPU")
    yield lib


@pytest.mark.parametrize("name", ["vllm-int8-channel-w-token-a", "vllm-int8-tensor-w-tensor-a",
                                  "vllm-int8-channel-w-tensor-a-noquant"])
def test_vllm_runner_binds_arguments_by_name(name, fake_vllm_ops, monkeypatch):
    from qbench_ext.bench.peers import VllmSource

    monkeypatch.setattr(gemm_suite, "load_vllm", lambda source: None)
    vllm = gemm_suite.VllmGemmOps(VllmSource("library", "/fake/_C.so", "from --vllm-lib"))
    assert vllm.available
    # The static quantizer's differing schema is noted once; the others match vLLM's.
    assert len(vllm.notes) == 1 and "static_scaled_int8_quant" in vllm.notes[0]
    a, b = torch.randn(24, 64, dtype=torch.bfloat16), torch.randn(32, 64, dtype=torch.bfloat16)
    runner = gemm_suite.build_runner(name, a, b, vllm=vllm)
    out = runner()
    assert gemm_suite.check_output(runner, out) == ("ok", pytest.approx(0, abs=1e-2), None)
    exact = a.double() @ b.double().t()
    assert (out.double() - exact).abs().max() < 0.05 * exact.abs().max()


def test_vllm_unavailable_reads_na():
    from qbench_ext.bench.peers import VllmSource

    vllm = gemm_suite.VllmGemmOps(VllmSource(None, None, "no `vllm` package"))
    assert not vllm.available
    assert vllm.describe() == "vLLM: not available (no `vllm` package)"
    with pytest.raises(ProviderUnavailable, match="not available"):
        gemm_suite.build_runner("vllm-int8-channel-w-token-a", torch.randn(4, 64),
                                torch.randn(16, 64), vllm=vllm)
