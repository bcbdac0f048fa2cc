"""What the quant and gemm suites share about their reports: a provider's measurement record,
the lines printed around their tables, and how a run ends (the report written, the exit status).

Each suite keeps its own checks and rates (GB/s, TFLOP/s); a record has the same fields in
every row of a suite, so that CSV columns line up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .results import write_results

MISMATCH, UNAVAILABLE, ERROR = "MISMATCH", "n/a", "error"
EVENTS_MARK = "e"  # a table cell timed with CUDA events, as graph capture failed


def provider_record(check: str, timing, note: str | None, rates: dict) -> dict:
    """One provider's record: its check, the timing's percentiles, `rates` (fields the suite
    derives from the timing, None where there is none) and the notes of check and timing."""
    notes = [n for n in (note, timing.note if timing else None) if n]
    return {
        "check": check,
        "median_ms": timing.median_ms if timing else None,
        "p20_ms": timing.p20_ms if timing else None,
        "p80_ms": timing.p80_ms if timing else None,
        **rates,
        "timing": timing.method if timing else None,
        "calls_per_replay": timing.calls_per_sample if timing else None,
        "note": "; ".join(notes) or None,
    }


def legend(results: list[dict], mismatch_meaning: str) -> list[str]:
    """What the marks of a table mean, for the marks it holds."""
    measurements = [m for r in results for m in r["providers"].values()]
    lines = []
    if any(m["timing"] == "events" for m in measurements):
        lines.append(f"{EVENTS_MARK}: CUDA-graph capture failed; timed eager calls with events")
    if any(m["check"] == MISMATCH for m in measurements):
        lines.append(f"mismatch: {mismatch_meaning}; not timed")
    return lines


def distinct_notes(
    results: list[dict],
    vllm_line: str,
    unit: str,
    title: Callable[[str], str] = str,
    note_of: Callable[[dict], str | None] = lambda m: m["note"],
) -> list[str]:
    """Each provider's distinct notes, once, with how many results (`unit`s) they concern; not
    the n/a reasons the vLLM line already gives. `title` names a provider key, `note_of` may
    word a record's note so that alike ones count together."""
    counts: dict[tuple[str, str], int] = {}
    for result in results:
        for key, record in result["providers"].items():
            note = note_of(record)
            if not note or (record["check"] == UNAVAILABLE and note in vllm_line):
                continue
            name = title(key)
            counts[(name, note)] = counts.get((name, note), 0) + 1
    return [f"{name}: {note} ({n} {unit}{'s' if n > 1 else ''})" for (name, note), n in counts.items()]


def vllm_status(source, vllm) -> dict:
    """Where vLLM's ops came from and what they could do, for a report's environment."""
    return {"source": source.kind, "location": source.location, "status": vllm.describe()}


def print_header(environment: dict, ceilings_line: str, vllm) -> None:
    print(
        f"GPU: {environment['gpu_name']} ({environment['gpu_sm_count']} SMs), driver "
        f"{environment['driver_version']}, torch {environment['torch']}, "
        f"triton {environment['triton']}"
    )
    print(ceilings_line)
    print(vllm.describe())
    for note in vllm.notes:
        print(note)


def finish(out: str | None, report: dict, interrupted: bool, checked: Sequence[str]) -> int:
    """Writes the report where asked, re-raises an interrupt once it is saved, and returns the
    exit status: 1 where a provider in `checked` (ours) gave a wrong result or failed."""
    if out:
        write_results(out, report)
        print(f"results written to {out}")
    if interrupted:
        raise KeyboardInterrupt
    failed = any(
        result["providers"][key]["check"] in (MISMATCH, ERROR)
        for result in report["results"]
        for key in checked
    )
    return 1 if failed else 0
