#!/usr/bin/env bash
# On the GPU machine, from the project root, the tree as committed: the committed kernel (A)
# against tokens_in_shared_memory.patch applied to a copy of csrc/ in /tmp (no git history
# needed there): the patch as it is (B: 256 weight bytes a lane at 2 CTAs an SM, 128 at 3,
# where 32 rows at 3 spill 92 bytes), the patch at the committed kernel's bytes in flight
# (C: 128 and 96) and the patch's 256 with 96 at 3 CTAs an SM (D: no spills), side by side in
# turns, then the early rows per shape and M, and the count of inexact rows.
set -u
out=${OUT:-/tmp/out}
here=docs/pending/decode-tokens-in-shared-memory
rm -rf /tmp/tok && mkdir -p /tmp/tok && cp -r csrc tests /tmp/tok/
(cd /tmp/tok && git init -q && git apply "$OLDPWD/$here/tokens_in_shared_memory.patch") || exit 1
flags="-std=c++20 -O3 -gencode=arch=compute_90a,code=sm_90a --expt-relaxed-constexpr"
nvcc $flags -Icsrc scripts/decode_probe.cu -o /tmp/pA &
nvcc $flags -I/tmp/tok/csrc scripts/decode_probe.cu -o /tmp/pB &
nvcc $flags -DQB_BYTES2=128 -DQB_BYTES3=96 -I/tmp/tok/csrc scripts/decode_probe.cu -o /tmp/pC &
nvcc $flags -DQB_BYTES3=96 -I/tmp/tok/csrc scripts/decode_probe.cu -o /tmp/pD &
wait
export QB_PROBE_GEMM_ONLY=1 QB_PROBE_MS=${MS:-1,4,16}
[ -n "${NK:-}" ] && export QB_PROBE_NK=$NK
for v in A B C D A B C D; do
  echo "=== variant $v"
  timeout -s KILL 60 stdbuf -oL /tmp/p$v "$v" >> "$out/probe_$v.txt" 2>&1
done
for v in A B C D; do
  grep early "$out/probe_$v.txt" | awk -v v=$v '{k=$4"x"$5" M="$3; a[k]=a[k]" "$6" ("$8")"} END{for(k in a) print k, v, a[k]}'
done | sort -t' ' -k1,1 -k2,2
grep -c MISMATCH "$out"/probe_*.txt
