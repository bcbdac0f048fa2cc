"""The report pieces the quant and gemm suites share (qbench_ext.bench.records), on CPU."""

import json
from types import SimpleNamespace

import pytest

from qbench_ext.bench import records


def _timing(median_ms=0.5, note=None, method="cuda-graph"):
    return SimpleNamespace(
        median_ms=median_ms, p20_ms=0.4, p80_ms=0.6, note=note, method=method, calls_per_sample=8
    )


def _result(**providers):
    return {"config": {"m": 1}, "providers": providers}


def test_provider_record_fields_and_order():
    record = records.provider_record("ok", _timing(note="graph of 8"), "check note", {"tflops": 2.5, "x": None})
    assert list(record) == [
        "check", "median_ms", "p20_ms", "p80_ms", "tflops", "x", "timing", "calls_per_replay", "note"
    ]
    assert record["median_ms"] == 0.5 and record["tflops"] == 2.5 and record["calls_per_replay"] == 8
    assert record["note"] == "check note; graph of 8"


def test_provider_record_untimed_has_the_same_fields():
    timed = records.provider_record("ok", _timing(), None, {"gbps": 1.0})
    untimed = records.provider_record(records.MISMATCH, None, "q codes differ", {"gbps": None})
    assert list(timed) == list(untimed)
    assert untimed["median_ms"] is None and untimed["timing"] is None and untimed["note"] == "q codes differ"
    assert timed["note"] is None


def test_legend_names_only_the_marks_present():
    ok = records.provider_record("ok", _timing(), None, {})
    events = records.provider_record("ok", _timing(method="events"), None, {})
    mismatch = records.provider_record(records.MISMATCH, None, None, {})
    assert records.legend([_result(a=ok)], "differs") == []
    lines = records.legend([_result(a=ok, b=events), _result(a=mismatch)], "differs from X")
    assert lines == [
        f"{records.EVENTS_MARK}: CUDA-graph capture failed; timed eager calls with events",
        "mismatch: differs from X; not timed",
    ]


def test_distinct_notes_counts_and_skips_what_the_vllm_line_says():
    n_a = records.provider_record(records.UNAVAILABLE, None, "needs the vllm package", {})
    odd = records.provider_record(records.ERROR, None, "CUDA error", {})
    results = [_result(v=n_a, o=odd), _result(v=n_a, o=odd), _result(v=n_a)]
    assert records.distinct_notes(results, "vLLM: needs the vllm package", "shape") == ["o: CUDA error (2 shapes)"]
    assert records.distinct_notes(results, "vLLM: found", "shape", title=str.upper, note_of=lambda r: "same") == [
        "V: same (3 shapes)",
        "O: same (2 shapes)",
    ]


def test_finish_writes_then_reports_our_failures(tmp_path, capsys):
    good = records.provider_record("ok", _timing(), None, {})
    bad = records.provider_record(records.MISMATCH, None, None, {})
    report = {"results": [_result(ours=good, theirs=bad)]}
    out = tmp_path / "r.json"
    assert records.finish(str(out), report, False, ["ours"]) == 0
    assert json.loads(out.read_text()) == report
    assert "results written to" in capsys.readouterr().out
    assert records.finish(None, report, False, ["ours", "theirs"]) == 1
    errored = {"results": [_result(ours=records.provider_record(records.ERROR, None, "boom", {}))]}
    assert records.finish(None, errored, False, ["ours"]) == 1


def test_finish_saves_an_interrupted_run_before_reraising(tmp_path):
    out = tmp_path / "r.csv"
    report = {"results": [_result(ours=records.provider_record("ok", _timing(), None, {}))]}
    with pytest.raises(KeyboardInterrupt):
        records.finish(str(out), report, True, ["ours"])
    assert out.read_text().startswith("m,provider,check")
