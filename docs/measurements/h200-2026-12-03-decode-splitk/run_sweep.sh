#!/bin/bash
# The split-K sweep: run from the repository root with splitk_kernel.patch applied (git apply).
nvidia-smi --query-gpu=name,power.limit,clocks.max.sm --format=csv,noheader
V=("base:" "t4s2:-DQB_SPLITK=2 -DQB_SPLITK_TILES=4" "t4s4:-DQB_SPLITK=4 -DQB_SPLITK_TILES=4" "t4s8:-DQB_SPLITK=8 -DQB_SPLITK_TILES=4" "t4s16:-DQB_SPLITK=16 -DQB_SPLITK_TILES=4" "t2s2:-DQB_SPLITK=2 -DQB_SPLITK_TILES=2" "t2s4:-DQB_SPLITK=4 -DQB_SPLITK_TILES=2" "t2s8:-DQB_SPLITK=8 -DQB_SPLITK_TILES=2" "t1s2:-DQB_SPLITK=2 -DQB_SPLITK_TILES=1" "t1s4:-DQB_SPLITK=4 -DQB_SPLITK_TILES=1")
for v in "${V[@]}"; do n=${v%%:*}; f=${v#*:}
  nvcc -std=c++20 -O3 -gencode=arch=compute_90a,code=sm_90a --expt-relaxed-constexpr -Icsrc $f scripts/decode_probe.cu -o /tmp/pr_$n & done
wait
for round in 1 2; do for v in "${V[@]}"; do n=${v%%:*}; echo "### $n round $round"; /tmp/pr_$n $n 2>&1 | grep -v "^bulk\|^read" || true; done; done
