"""Our pre-quantized GEMM and vLLM's, each on a weight of its own, timed three ways: each
alone (its own replays back to back, as vLLM's benchmarks time), in turns (bench/timing.py's
time_graph_replays_in_turns, what the GEMM benchmark does), and in turns with the L2 flushed
by writing twice its bytes before every replay. us per call, median of graph replays.

    python docs/measurements/h200-2026-12-04-l2-resident/l2_state_probe.py   (QBENCH_VLLM_LIB set)
"""

import statistics

import torch

from qbench_ext.bench import gemm as suite
from qbench_ext.bench import timing

SHAPES = [(6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336)]
PROVIDERS = ["int8-channel-w-token-a-noquant", "vllm-int8-channel-w-token-a-noquant"]
ROUNDS = 40


def in_turns_flushed(runners):
    """Per-call us of each runner's graph replays in turns, the L2 flushed before each."""
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    flush = torch.empty(2 * l2, dtype=torch.uint8, device="cuda")
    graphs = [timing._graph_for_timing(r) for r in runners]
    events = [[(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in graphs]
              for _ in range(ROUNDS)]
    for row in events:
        for (graph, _), (start, end) in zip(graphs, row):
            flush.zero_()
            start.record()
            graph.replay()
            end.record()
    torch.cuda.synchronize()
    return [1e3 * statistics.median(row[i][0].elapsed_time(row[i][1]) for row in events) / calls
            for i, (_, calls) in enumerate(graphs)]


def main():
    print(torch.cuda.get_device_name(), torch.__version__)
    print(f"{'N':>6} {'K':>6} {'M':>4} | {'ours alone':>10} {'vLLM alone':>10} | {'ours turns':>10} {'vLLM turns':>10} |"
          f" {'ours flush':>10} {'vLLM flush':>10}")
    for n, k in SHAPES:
        w = torch.randn(n, k, dtype=torch.bfloat16, device="cuda")
        for m in (1, 16, 64):
            a = torch.randn(m, k, dtype=torch.bfloat16, device="cuda")
            runners = [suite.build_runner(p, a, w) for p in PROVIDERS]
            alone = [1e3 * timing.time_graph_replay(r, warmup_iters=5, bench_iters=ROUNDS).median_ms for r in runners]
            turns = [1e3 * t.median_ms
                     for t in timing.time_graph_replays_in_turns(runners, warmup_iters=[5, 5], bench_iters=ROUNDS)]
            flushed = in_turns_flushed(runners)
            print(f"{n:6d} {k:6d} {m:4d} | {alone[0]:10.2f} {alone[1]:10.2f} | {turns[0]:10.2f} {turns[1]:10.2f} |"
                  f" {flushed[0]:10.2f} {flushed[1]:10.2f}", flush=True)


if __name__ == "__main__":
    main()
