#!/usr/bin/env bash
# On the GPU machine, from the project root of a checkout at the commit the patch was made on
# (0f68cdf) with the patch applied (`git apply docs/pending/decode-tokens-in-shared-memory/
# tokens_in_shared_memory.patch`): the committed kernel (A), the patch as it is (B: 256 weight
# bytes a lane at 2 CTAs an SM, 128 at 3) and the patch at the committed kernel's bytes in flight
# (C: 128 and 96), side by side in turns, then the early rows per shape and M.
set -u
out=${OUT:-/tmp/out}
mkdir -p probe_base/gemm
git show 0f68cdf:csrc/gemm/int8_scaled_mm_decode.cu > probe_base/gemm/int8_scaled_mm_decode.cu
flags="-std=c++20 -O3 -gencode=arch=compute_90a,code=sm_90a --expt-relaxed-constexpr"
nvcc $flags -Iprobe_base -Icsrc scripts/decode_probe.cu -o /tmp/pA &
nvcc $flags -Icsrc scripts/decode_probe.cu -o /tmp/pB &
nvcc $flags -DQB_BYTES2=128 -DQB_BYTES3=96 -Icsrc scripts/decode_probe.cu -o /tmp/pC &
wait
export QB_PROBE_GEMM_ONLY=1 QB_PROBE_MS=${MS:-1,4,16}
[ -n "${NK:-}" ] && export QB_PROBE_NK=$NK
for v in A B C A B C; do
  echo "=== variant $v"
  timeout -s KILL 60 stdbuf -oL /tmp/p$v "$v" >> "$out/probe_$v.txt" 2>&1
done
for v in A B C; do
  grep early "$out/probe_$v.txt" | awk -v v=$v '{k=$4"x"$5" M="$3; a[k]=a[k]" "$6" ("$8")"} END{for(k in a) print k, v, a[k]}'
done | sort -t' ' -k1,1 -k2,2
grep -c MISMATCH "$out"/probe_*.txt
