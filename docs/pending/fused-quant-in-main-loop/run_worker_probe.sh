#!/usr/bin/env bash
# On the GPU machine, from the project root: quant_worker_probe.cu with 1 and 4 worker warps a
# CTA and rings of 64 and 128 KB, into $OUT/quant_worker.txt (about a minute). The probe needs
# csrc/quantization/int8_quant_math.cuh, which the quantization part of the prologue prototype's
# patch adds; it is applied to a copy of csrc/ in /tmp, so the tree (and a build after this in
# the same call) stays as committed.
set -u
out=${OUT:-/tmp/out}
root=$(pwd)
rm -rf /tmp/qm && mkdir -p /tmp/qm && cp -r csrc /tmp/qm/
(cd /tmp/qm && git init -q && git apply --include='csrc/quantization/*' \
  "$root/docs/measurements/h200-2026-12-04-fused-quant/fused_quant_prologue.patch") || exit 1
nvcc -std=c++20 -O3 -gencode=arch=compute_90a,code=sm_90a -I/tmp/qm/csrc -Iscripts -maxrregcount=40 \
  docs/pending/fused-quant-in-main-loop/quant_worker_probe.cu -o /tmp/quant_worker_probe || exit 1
for workers in 1 4; do
  for ring in 64 128; do
    QB_WORKERS=$workers QB_RING_KB=$ring timeout -s KILL 90 stdbuf -oL /tmp/quant_worker_probe "w${workers}_r${ring}" \
      2>&1 | tee -a "$out/quant_worker.txt"
  done
done
