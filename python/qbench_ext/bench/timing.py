"""GPU timing shared by every suite.

`time_graph_replay` is the default: it captures N back-to-back calls in one CUDA graph and
times replays of it, so that per-call figures hold kernel time (plus the graph's launch
gaps) rather than Python and launch overhead; `time_graph_replays_in_turns` does the same
for several callables whose figures are compared, alternating their replays. `time_events`
times eager calls between CUDA events: the fallback when capture fails, and the method for
operations too long to need a graph (the copy-bandwidth ceiling).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

# A replay this long hides the graph-launch cost in the per-call time; more calls than this
# per graph only lengthen capture without making the figure steadier.
MIN_REPLAY_MS = 0.5
MAX_CALLS_PER_REPLAY = 100
# A first graph of _PROBE_CALLS calls, replayed _PROBE_REPLAYS times, estimates a call's
# duration to choose N. One call per probe graph would not do: a short graph's replay lasts
# as long as the host takes to submit it, so a microsecond kernel looked ~20x longer, got a
# small N, and its timed replays then left the GPU waiting on the host between replays,
# timing the host's submission instead of the kernel.
_PROBE_CALLS = 10
_PROBE_REPLAYS = 5


@dataclass(frozen=True)
class Timing:
    """Per-call duration statistics; each sample timed `calls_per_sample` back-to-back calls."""

    median_ms: float
    p20_ms: float
    p80_ms: float
    method: str  # "cuda-graph" or "events"
    calls_per_sample: int
    note: str | None = None


def _summarize(per_call_ms: list[float], method: str, calls_per_sample: int, note=None) -> Timing:
    if len(per_call_ms) == 1:
        p20 = p80 = per_call_ms[0]
    else:
        cuts = statistics.quantiles(per_call_ms, n=10, method="inclusive")
        p20, p80 = cuts[1], cuts[7]
    return Timing(
        median_ms=statistics.median(per_call_ms),
        p20_ms=p20,
        p80_ms=p80,
        method=method,
        calls_per_sample=calls_per_sample,
        note=note,
    )


def _calls_for(one_call_ms: float) -> int:
    if one_call_ms <= 0:
        return MAX_CALLS_PER_REPLAY
    return max(1, min(MAX_CALLS_PER_REPLAY, math.ceil(MIN_REPLAY_MS / one_call_ms)))


def _elapsed_ms(run: Callable[[], None], repeats: int) -> list[float]:
    """Runs `run` `repeats` times back to back, each between two events; one sync at the end
    so the host never stalls the queue between samples."""
    events = [
        (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        for _ in range(repeats)
    ]
    for start, end in events:
        start.record()
        run()
        end.record()
    torch.cuda.synchronize()
    return [start.elapsed_time(end) for start, end in events]


def calls_in_turn(fns: Sequence[Callable[[], object]]) -> Callable[[], object]:
    """One callable that calls `fns` in turn, one a call: a graph captured from it walks
    through them (e.g. one GEMM on several copies of its weight)."""
    calls = itertools.count()
    return lambda: fns[next(calls) % len(fns)]()


def _capture(fn: Callable[[], object], calls: int) -> torch.cuda.CUDAGraph:
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    return graph


def time_events(
    fn: Callable[[], object],
    *,
    warmup_iters: int,
    bench_iters: int,
    calls_per_sample: int | None = None,
    note: str | None = None,
) -> Timing:
    """Times eager calls of `fn` with CUDA events: `bench_iters` samples of
    `calls_per_sample` back-to-back calls each (chosen like the graph's N when None)."""
    for _ in range(warmup_iters):
        fn()
    torch.cuda.synchronize()
    if calls_per_sample is None:
        calls_per_sample = _calls_for(statistics.median(_elapsed_ms(fn, _PROBE_REPLAYS)))

    def run() -> None:
        for _ in range(calls_per_sample):
            fn()

    samples = _elapsed_ms(run, bench_iters)
    return _summarize([t / calls_per_sample for t in samples], "events", calls_per_sample, note)


def _graph_for_timing(fn: Callable[[], object]) -> tuple[torch.cuda.CUDAGraph, int]:
    """A graph of N back-to-back calls of `fn` (N so that one replay lasts about
    MIN_REPLAY_MS, at most MAX_CALLS_PER_REPLAY), already uploaded, and N. Raises
    RuntimeError when `fn` cannot be captured."""
    probe = _capture(fn, _PROBE_CALLS)
    probe.replay()
    one_call_ms = min(_elapsed_ms(probe.replay, _PROBE_REPLAYS)) / _PROBE_CALLS
    del probe
    calls = _calls_for(one_call_ms)
    graph = _capture(fn, calls)
    graph.replay()  # the first replay uploads the graph; keep it out of the samples
    return graph, calls


def replay_in_turns(graphs: Sequence[torch.cuda.CUDAGraph], rounds: int) -> list[list[float]]:
    """Replays `graphs` in turns (A B C A B C ...), `rounds` replays of each, every replay
    between two events and one sync at the end; the elapsed ms of each graph's replays."""
    events = [
        [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in graphs]
        for _ in range(rounds)
    ]
    for row in events:
        for graph, (start, end) in zip(graphs, row):
            start.record()
            graph.replay()
            end.record()
    torch.cuda.synchronize()
    return [[row[i][0].elapsed_time(row[i][1]) for row in events] for i in range(len(graphs))]


def time_graph_replay(
    fn: Callable[[], object], *, warmup_iters: int, bench_iters: int
) -> Timing:
    """Times `fn` by CUDA-graph replay: eager warm-up, a graph of N back-to-back calls
    (N so that one replay lasts about MIN_REPLAY_MS, at most MAX_CALLS_PER_REPLAY), then
    `bench_iters` replays; per-call time = replay time / N.

    `fn` must be capturable: no host synchronization, outputs preallocated or taken from
    the graph's private memory pool. When capture fails, falls back to `time_events` and
    says so in the result's note.
    """
    return time_graph_replays_in_turns([fn], warmup_iters=[warmup_iters], bench_iters=bench_iters)[0]


def time_graph_replays_in_turns(
    fns: Sequence[Callable[[], object]], *, warmup_iters: Sequence[int], bench_iters: int
) -> list[Timing]:
    """`time_graph_replay` of several callables at once, with their replays taken in turns:
    one replay of each per round, `bench_iters` rounds. A drift of the GPU's clocks during
    the run (its power and thermal limits, reached by large GEMMs within milliseconds) then
    moves every callable's figures alike and their ratios hold, where timing one after the
    other would fold the drift into the ratios. Every graph stays alive until the end, so
    the callables' graph memory pools must fit at once. A callable that cannot be captured
    is timed alone with events, and its result says so.
    """
    if len(warmup_iters) != len(fns):
        raise ValueError(f"{len(fns)} callables but {len(warmup_iters)} warm-up counts")
    for fn, warmup in zip(fns, warmup_iters):
        for _ in range(warmup):
            fn()
    torch.cuda.synchronize()
    results: list[Timing | None] = [None] * len(fns)
    captured: dict[int, tuple[torch.cuda.CUDAGraph, int]] = {}
    for i, fn in enumerate(fns):
        try:
            captured[i] = _graph_for_timing(fn)
        except RuntimeError as exc:
            torch.cuda.synchronize()
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            results[i] = time_events(
                fn,
                warmup_iters=0,
                bench_iters=bench_iters,
                note=f"CUDA-graph capture failed ({reason}); timed eager calls with events",
            )
    samples = replay_in_turns([graph for graph, _ in captured.values()], bench_iters)
    for (i, (_, calls)), times in zip(captured.items(), samples):
        results[i] = _summarize([t / calls for t in times], "cuda-graph", calls)
    return results
