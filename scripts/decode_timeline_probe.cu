// Where a decode GEMM call spends its time (csrc/gemm/int8_scaled_mm_decode.cu), without torch.
// decode_probe.cu says how far each call is from the weight-read floor; this one says why: it
// builds the kernel with its QB_DECODE_MARK hook stamping, in thread 0 of every CTA, the global
// timer and the SM's cycle counter at five points
//   0 start   1 past the PDL wait   2 warp 0's K loop done   3 all warps' K loops done
//   4 epilogue done (thread 0's output stored)
// and replays a CUDA graph of back-to-back calls rotating through weight copies past the L2,
// as decode_probe does, once with the stamps recorded. Per steady-state call it prints
//   period   from one call's first CTA past its wait to the next call's: the time per call;
//   pre      a CTA's time from its start to past its wait (its early weight stage in flight
//            while the call before finishes), median over the call's CTAs;
//   loop     past the wait to warp 0's loop end; tail: the other warps' extra; epi: reduction
//            and epilogue; all medians, then the call's slowest CTA from past-wait to done;
//   overlap  how long the call's first CTA started before the call before had finished.
//
//   nvcc -std=c++20 -O3 -gencode=arch=compute_90a,code=sm_90a --expt-relaxed-constexpr -Icsrc \
//        scripts/decode_timeline_probe.cu -o decode_timeline_probe
//   QB_PROBE_NK=... QB_PROBE_MS=... ./decode_timeline_probe   # other shapes, token counts (as decode_probe)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace timeline {
constexpr int kPoints = 5;
constexpr unsigned kMaxRecords = 1 << 16;
struct Record {
  uint64_t ns[kPoints];
  uint64_t cycles[kPoints];
};
__device__ unsigned g_next;
__device__ Record g_records[kMaxRecords];

// Thread 0 only: the CTA's record is the next free one, in the order the CTAs start (all CTAs
// of a call start before the next call may, since a call lets the next one in only past its
// wait and every CTA of these grids is resident at once).
__device__ __forceinline__ void mark(int point) {
  __shared__ unsigned slot;
  if (threadIdx.x != 0) return;
  uint64_t ns, cycles;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(ns));
  asm volatile("mov.u64 %0, %%clock64;" : "=l"(cycles));
  if (point == 0) slot = atomicAdd(&g_next, 1u);
  if (slot < kMaxRecords) {
    g_records[slot].ns[point] = ns;
    g_records[slot].cycles[point] = cycles;
  }
}
}  // namespace timeline

#define QB_DECODE_MARK(point) ::timeline::mark(point)
#include "gemm/int8_scaled_mm_decode.cu"
#include "decode_probe_inputs.cuh"

namespace {

using namespace probe;

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

}  // namespace

int main() {
  using qbench::int8_mm::Problem;
  using timeline::Record;
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  const float gbps = copy_gbps(stream);
  std::printf("# decode timeline: %s, copy %.0f GB/s; us, medians over a call's CTAs\n", prop.name, gbps);
  std::printf("%5s %6s %6s %6s %5s %8s %8s %7s %7s %7s %7s %8s %8s %8s\n", "M", "N", "K", "ctas", "call", "period",
              "floor", "pre", "loop", "tail", "epi", "slowest", "overlap", "cyc/ns");

  for (const auto& nk : decode_shapes()) {
    const int n = nk[0], k = nk[1];
    const int64_t weight_bytes = int64_t(n) * k;
    const std::vector<int8_t*> weights = weight_copies(weight_bytes, prop, stream);
    const int copies = static_cast<int>(weights.size());
    for (int m : decode_token_counts()) {
      void* out;
      CHECK_CUDA(cudaMalloc(&out, int64_t(m) * n * 2));
      Problem p = decode_problem(m, n, k, out, prop, stream);
      p.b_ready_before_launch = true;

      const int calls = calls_per_graph(copies);
      const cudaGraphExec_t exec = warm_graph_of_calls(
          [&](int c) {
            p.b = weights[c % copies];
            if (!qbench::int8_mm::sm90_decode_mma_16x16_ksplit8(p).empty()) std::exit(3);
          },
          calls, stream);
      const unsigned zero = 0;
      CHECK_CUDA(cudaMemcpyToSymbolAsync(timeline::g_next, &zero, sizeof(zero), 0, cudaMemcpyHostToDevice, stream));
      CHECK_CUDA(cudaGraphLaunch(exec, stream));
      CHECK_CUDA(cudaStreamSynchronize(stream));
      unsigned records = 0;
      CHECK_CUDA(cudaMemcpyFromSymbol(&records, timeline::g_next, sizeof(records)));
      if (records % calls != 0 || records > timeline::kMaxRecords) {
        std::fprintf(stderr, "%u records for %d calls\n", records, calls);
        return 4;
      }
      std::vector<Record> rec(records);
      CHECK_CUDA(cudaMemcpyFromSymbol(rec.data(), timeline::g_records, records * sizeof(Record)));
      const int ctas = static_cast<int>(records / calls);

      // Per call: the earliest start, the earliest past-wait and the latest done stamps.
      std::vector<uint64_t> first_start(calls, UINT64_MAX), first_past_wait(calls, UINT64_MAX), last_done(calls, 0);
      for (int c = 0; c < calls; ++c) {
        for (int i = 0; i < ctas; ++i) {
          const Record& r = rec[c * ctas + i];
          first_start[c] = std::min(first_start[c], r.ns[0]);
          first_past_wait[c] = std::min(first_past_wait[c], r.ns[1]);
          last_done[c] = std::max(last_done[c], r.ns[4]);
        }
      }
      // Three steady-state calls from the middle of the replay.
      for (int c = calls / 2; c < calls / 2 + 3; ++c) {
        std::vector<double> pre, loop, tail, epi, cyc_per_ns;
        double slowest = 0;
        for (int i = 0; i < ctas; ++i) {
          const Record& r = rec[c * ctas + i];
          pre.push_back((r.ns[1] - r.ns[0]) * 1e-3);
          loop.push_back((r.ns[2] - r.ns[1]) * 1e-3);
          tail.push_back((r.ns[3] - r.ns[2]) * 1e-3);
          epi.push_back((r.ns[4] - r.ns[3]) * 1e-3);
          slowest = std::max(slowest, (r.ns[4] - r.ns[1]) * 1e-3);
          if (r.ns[4] > r.ns[0]) cyc_per_ns.push_back(double(r.cycles[4] - r.cycles[0]) / double(r.ns[4] - r.ns[0]));
        }
        const double period = (first_past_wait[c + 1] - first_past_wait[c]) * 1e-3;
        const double overlap = (double(last_done[c - 1]) - double(first_start[c])) * 1e-3;
        std::printf("%5d %6d %6d %6d %5d %8.2f %8.2f %7.2f %7.2f %7.2f %7.2f %8.2f %8.2f %8.2f\n", m, n, k, ctas, c,
                    period, weight_bytes / (gbps * 1e3f), median(pre), median(loop), median(tail), median(epi),
                    slowest, overlap, cyc_per_ns.empty() ? 0.0 : median(cyc_per_ns));
      }
      // The timer's granularity: the smallest nonzero step between the sorted start stamps.
      std::vector<uint64_t> starts;
      for (const Record& r : rec) starts.push_back(r.ns[0]);
      std::sort(starts.begin(), starts.end());
      uint64_t step = UINT64_MAX;
      for (size_t i = 1; i < starts.size(); ++i)
        if (starts[i] != starts[i - 1]) step = std::min(step, starts[i] - starts[i - 1]);
      std::printf("#   globaltimer step %llu ns\n", static_cast<unsigned long long>(step));
      CHECK_CUDA(cudaGraphExecDestroy(exec));
      free_problem(p);
      CHECK_CUDA(cudaFree(out));
    }
    for (int8_t* w : weights) CHECK_CUDA(cudaFree(w));
  }
  return 0;
}
