#!/usr/bin/env bash
# On the GPU machine, from the project root: quant_worker_probe.cu with 1 and 4 worker warps a
# CTA and rings of 64 and 128 KB, into $OUT/quant_worker.txt (about a minute). The probe's
# helpers come with the fused kernel (patched_csrc.sh: the tree's own or a patched copy).
set -u
out=${OUT:-/tmp/out}
# shellcheck source=patched_csrc.sh
source docs/pending/fused-quant-in-main-loop/patched_csrc.sh
nvcc -std=c++20 -O3 -gencode=arch=compute_90a,code=sm_90a -I$src -Iscripts -maxrregcount=40 \
  "$here/quant_worker_probe.cu" -o /tmp/quant_worker_probe || exit 1
for workers in 1 4; do
  for ring in 64 128; do
    QB_WORKERS=$workers QB_RING_KB=$ring timeout -s KILL 90 stdbuf -oL /tmp/quant_worker_probe "w${workers}_r${ring}" \
      2>&1 | tee -a "$out/quant_worker.txt"
  done
done
