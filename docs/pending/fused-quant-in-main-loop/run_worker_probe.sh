#!/usr/bin/env bash
# On the GPU machine, from the project root: quant_worker_probe.cu with 1 and 4 worker warps a
# CTA and rings of 64 and 128 KB, into $OUT/quant_worker.txt (about a minute). The probe's
# helpers come with background_quant_gemm.patch, applied to a copy of csrc/ in /tmp, so the
# tree (and a build after this in the same call) stays as committed.
set -u
out=${OUT:-/tmp/out}
here=docs/pending/fused-quant-in-main-loop
rm -rf /tmp/bgsrc && mkdir -p /tmp/bgsrc && cp -r csrc /tmp/bgsrc/
(cd /tmp/bgsrc && git init -q && git apply "$OLDPWD/$here/background_quant_gemm.patch") || exit 1
nvcc -std=c++20 -O3 -gencode=arch=compute_90a,code=sm_90a -I/tmp/bgsrc/csrc -Iscripts -maxrregcount=40 \
  "$here/quant_worker_probe.cu" -o /tmp/quant_worker_probe || exit 1
for workers in 1 4; do
  for ring in 64 128; do
    QB_WORKERS=$workers QB_RING_KB=$ring timeout -s KILL 90 stdbuf -oL /tmp/quant_worker_probe "w${workers}_r${ring}" \
      2>&1 | tee -a "$out/quant_worker.txt"
  done
done
