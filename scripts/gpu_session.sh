#!/usr/bin/env bash
# One call of the device tool: the steps named on the command line, in order, each logged to
# $OUT/<step>.txt (what comes back), with its duration. Run from the project root on the GPU
# machine, after `source .device/setup.sh`:
#
#   bash scripts/gpu_session.sh build test gemm quant
#
# Steps:
#   probe   one kernel alone, without torch: scripts/$PROBE.cu (default decode_probe, the decode
#           GEMM; quant_latency_probe: the quantization kernel on small inputs), one binary
#           per entry of $PROBE_VARIANTS (sets of -D flags for macros an edit of the kernel
#           reads, ';'-separated; default: one binary, the kernel as it is)
#   build   the extension, editable, into the persistent build/ (incremental while warm)
#   test    pytest -m gpu ($TEST_ARGS adds arguments, split on spaces: test files, -x,
#           --deselect NODE; a -k expression with spaces cannot pass through it)
#   gemm    scripts/gpu_check_gemm.py ($GEMM_ARGS adds arguments, e.g. --ms 1 16 64)
#   quant   python -m qbench_ext.bench quant ($QUANT_ARGS adds arguments)
#   gemm-bench  python -m qbench_ext.bench gemm ($GEMM_BENCH_ARGS adds arguments)
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
# The machine's default g++ links libstdc++ statically, which crashes inside torch (see
# CMakeLists.txt); the system one does not.
export CXX=/usr/bin/g++ CUDAHOSTCXX=/usr/bin/g++ QBENCH_CUDA_ARCHS=${QBENCH_CUDA_ARCHS:-90a}
status=0

probe() {
  local variants=${PROBE_VARIANTS:-} src=scripts/${PROBE:-decode_probe}.cu i=0 pids=() flags
  [ -n "$variants" ] || variants=" "
  IFS=';' read -ra list <<<"$variants"
  for flags in "${list[@]}"; do
    # shellcheck disable=SC2086
    nvcc -std=c++20 -O3 -gencode=arch=compute_90a,code=sm_90a --expt-relaxed-constexpr -Icsrc $flags "$src" \
      -o "/tmp/probe_$i" &
    pids+=($!)
    i=$((i + 1))
  done
  for pid in "${pids[@]}"; do wait "$pid" || return 1; done
  i=0
  for flags in "${list[@]}"; do
    "/tmp/probe_$i" "${flags// /}" || return 1
    i=$((i + 1))
  done
}

build() { python3 -m pip install --no-build-isolation --no-deps -e . 2>&1 | tail -n 30; }
# shellcheck disable=SC2086
test_step() { python3 -m pytest -m gpu -q -p no:cacheprovider --durations=15 ${TEST_ARGS:-}; }
# shellcheck disable=SC2086
gemm() { python3 scripts/gpu_check_gemm.py --json "$out/gemm.json" ${GEMM_ARGS:-}; }
# shellcheck disable=SC2086
quant() { python3 -m qbench_ext.bench quant --out "$out/quant.json" ${QUANT_ARGS:-}; }
# shellcheck disable=SC2086
gemm_bench() { python3 -m qbench_ext.bench gemm --out "$out/gemm_bench.json" ${GEMM_BENCH_ARGS:-}; }

for step in "$@"; do
  fn=${step//-/_}
  [ "$fn" = test ] && fn=test_step
  start=$SECONDS
  echo "==> $step"
  "$fn" > "$out/$step.txt" 2>&1
  rc=$?
  tail -n 40 "$out/$step.txt"
  echo "==> $step: rc=$rc, $((SECONDS - start)) s"
  if [ $rc -ne 0 ]; then
    status=$rc
    [ "$step" = build ] && break
  fi
done
exit $status
