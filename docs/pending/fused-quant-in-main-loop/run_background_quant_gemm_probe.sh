#!/usr/bin/env bash
# On the GPU machine, from the project root, after `source .device/setup.sh` (which puts the
# carried CUTLASS headers under /tmp/qbench-site): background_quant_gemm_probe.cu built against
# a csrc/ with the fused kernel (patched_csrc.sh), with rings of 64 and 32 KB, into
# $OUT/background_quant_gemm.txt. Each binary checks q, the scales and the output bit for bit
# before it times; a hang is cut off at 240 s (a binary should take about a minute).
set -u
out=${OUT:-/tmp/out}
cutlass=/tmp/qbench-site/cutlass_library/source
# shellcheck source=patched_csrc.sh
source docs/pending/fused-quant-in-main-loop/patched_csrc.sh
for ring in 64 32; do
  nvcc -std=c++20 -O3 -DNDEBUG -gencode=arch=compute_90a,code=sm_90a --expt-relaxed-constexpr --expt-extended-lambda \
    -DQB_BG_RING_KB=$ring -I$src -Iscripts -I$cutlass/include -I$cutlass/tools/util/include \
    "$here/background_quant_gemm_probe.cu" -o "/tmp/background_quant_gemm_probe_$ring" &
done
wait
for ring in 64 32; do
  timeout -s KILL 240 stdbuf -oL "/tmp/background_quant_gemm_probe_$ring" "ring${ring}" 2>&1 | tee -a "$out/background_quant_gemm.txt"
done
