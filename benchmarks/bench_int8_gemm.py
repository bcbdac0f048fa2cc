"""BF16 vs INT8 GEMM benchmark on real models' linear-layer shapes: the same as
`python -m qbench_ext.bench gemm`, with the same flags, e.g.

    python benchmarks/bench_int8_gemm.py --models meta-llama/Llama-3.1-70B-Instruct \
        --tp-sizes 4 8 --plot-dir plots --out gemm.json
"""

from qbench_ext.bench import main

if __name__ == "__main__":
    raise SystemExit(main(prog="bench_int8_gemm.py", suite="gemm"))
