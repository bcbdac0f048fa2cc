"""bench/timing.py on the GPU: graph replays taken in turns, and the events fallback."""

import pytest
import torch

from qbench_ext.bench import timing

PRIME = 1_000_003


def _graph(fn, calls):
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    return graph


@pytest.mark.gpu
def test_replays_in_turns_alternate_the_graphs(cuda):
    # Two graphs whose operations do not commute on one counter: the final value tells the
    # order in which their replays ran.
    counter = torch.full((), 7, dtype=torch.int64, device=cuda)

    def triple():
        counter.mul_(3).remainder_(PRIME)

    def increment():
        counter.add_(1)

    calls_a, calls_b, rounds = 3, 2, 5
    graphs = [_graph(triple, calls_a), _graph(increment, calls_b)]
    torch.cuda.synchronize()
    counter.fill_(7)
    samples = timing.replay_in_turns(graphs, rounds)

    expected = 7
    for _ in range(rounds):
        for _ in range(calls_a):
            expected = expected * 3 % PRIME
        expected += calls_b
    assert counter.item() == expected
    assert [len(s) for s in samples] == [rounds, rounds]
    assert all(t > 0 for s in samples for t in s)


@pytest.mark.gpu
def test_in_turns_times_each_and_falls_back_to_events(cuda):
    x = torch.randn(1 << 20, device=cuda)
    out = torch.empty_like(x)

    def copy():
        out.copy_(x)

    def synchronizing():  # cannot be captured: it reads a value back to the host
        out.copy_(x)
        float(out[0])

    first, second, third = timing.time_graph_replays_in_turns(
        [copy, synchronizing, copy], warmup_iters=[2, 1, 0], bench_iters=12
    )
    for result in (first, third):
        assert result.method == "cuda-graph" and result.note is None
        assert 0 < result.p20_ms <= result.median_ms <= result.p80_ms
    assert second.method == "events" and "capture failed" in second.note
    assert second.median_ms > 0
