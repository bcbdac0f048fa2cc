#pragma once
// What the decode-GEMM probes (decode_probe.cu, decode_timeline_probe.cu) set up alike: the
// shapes, the rotating weight copies and a problem's random activations and scales.
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <vector>

#include "gemm/int8_scaled_mm.h"
#include "probe_util.cuh"

namespace probe {

// Llama-3.1-8B TP1's weights as (N, K), or those of QB_PROBE_NK=NxK,NxK,... in the environment.
inline std::vector<std::array<int, 2>> decode_shapes() {
  std::vector<std::array<int, 2>> shapes = {{6144, 4096}, {4096, 4096}, {28672, 4096}, {4096, 14336}};
  if (const char* spec = std::getenv("QB_PROBE_NK")) {
    shapes.clear();
    int n, k, used;
    for (const char* c = spec; std::sscanf(c, "%dx%d%n", &n, &k, &used) == 2; c += used + (c[used] == ','))
      shapes.push_back({n, k});
  }
  return shapes;
}

// The token counts M of the GEMM rows: 1 and 16, or those of QB_PROBE_MS=1,5,16,... in the
// environment.
inline std::vector<int> decode_token_counts() {
  std::vector<int> ms = {1, 16};
  if (const char* spec = std::getenv("QB_PROBE_MS")) {
    ms.clear();
    int m, used;
    for (const char* c = spec; std::sscanf(c, "%d%n", &m, &used) == 1; c += used + (c[used] == ',')) ms.push_back(m);
  }
  return ms;
}

// Random N x K weights, in enough copies that calls rotating through them read from DRAM (three
// times the L2), as a forward pass does; QB_PROBE_WEIGHT_COPIES=C in the environment makes C
// copies instead (1: one weight that stays in the L2 between calls, as vLLM's benchmarks time it).
inline std::vector<int8_t*> weight_copies(int64_t weight_bytes, const cudaDeviceProp& prop, cudaStream_t stream) {
  int copies = static_cast<int>(std::max<int64_t>(2, 3 * int64_t(prop.l2CacheSize) / weight_bytes + 1));
  if (const char* forced = std::getenv("QB_PROBE_WEIGHT_COPIES")) copies = std::max(1, std::atoi(forced));
  std::vector<int8_t*> weights(copies);
  for (int c = 0; c < copies; ++c) {
    CHECK_CUDA(cudaMalloc(&weights[c], weight_bytes));
    fill_int8<<<1024, 256, 0, stream>>>(weights[c], weight_bytes, 1000 + c);
  }
  return weights;
}

// Calls a timed graph holds: each copy four times, and at least 32 so that one copy (an
// L2-resident weight) is not timed on a graph short enough for its launch to show.
inline int calls_per_graph(int copies) { return std::max(4 * copies, 32); }

// An M x N x K problem on random int8 tokens (M x K, row-major) with per-token and per-channel
// scales, into `out` (M x N); b is left for the caller. free_problem releases what it allocated.
inline qbench::int8_mm::Problem decode_problem(int m, int n, int k, void* out, const cudaDeviceProp& prop,
                                               cudaStream_t stream) {
  int8_t* a;
  float *sa, *sb;
  CHECK_CUDA(cudaMalloc(&a, int64_t(m) * k));
  CHECK_CUDA(cudaMalloc(&sa, m * sizeof(float)));
  CHECK_CUDA(cudaMalloc(&sb, n * sizeof(float)));
  fill_int8<<<1024, 256, 0, stream>>>(a, int64_t(m) * k, m);
  fill_scale<<<64, 256, 0, stream>>>(sa, m, 7);
  fill_scale<<<64, 256, 0, stream>>>(sb, n, 8);
  qbench::int8_mm::Problem p;
  p.m = m, p.n = n, p.k = k;
  p.a = a, p.lda = k;
  p.ldb = k;
  p.out = out, p.ldo = n;
  p.scale_a = sa, p.scale_a_per_row = true;
  p.scale_b = sb, p.scale_b_per_col = true;
  p.sm_count = prop.multiProcessorCount;
  p.stream = stream;
  return p;
}

inline void free_problem(const qbench::int8_mm::Problem& p) {
  CHECK_CUDA(cudaFree(const_cast<int8_t*>(p.a)));
  CHECK_CUDA(cudaFree(const_cast<float*>(p.scale_a)));
  CHECK_CUDA(cudaFree(const_cast<float*>(p.scale_b)));
}

}  // namespace probe
