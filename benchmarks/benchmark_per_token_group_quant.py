"""Per-token-group FP8/INT8 quantization benchmark: the same as
`python -m qbench_ext.bench quant`, with the same flags, e.g.

    python benchmarks/benchmark_per_token_group_quant.py --dtype fp8 --bench-iters 200
"""

from qbench_ext.bench import main

if __name__ == "__main__":
    raise SystemExit(main(prog="benchmark_per_token_group_quant.py", suite="quant"))
