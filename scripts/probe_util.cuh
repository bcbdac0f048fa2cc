#pragma once
// What the standalone probes (scripts/*_probe.cu) share: error checks, a hash for random data,
// an empty kernel, CUDA-graph timing of back-to-back calls and the copy-bandwidth ceiling.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace probe {

#define CHECK_CUDA(call)                                                                       \
  do {                                                                                         \
    const cudaError_t err_ = (call);                                                           \
    if (err_ != cudaSuccess) {                                                                 \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(err_)); \
      std::exit(2);                                                                            \
    }                                                                                          \
  } while (0)

// A 64-bit hash (splitmix64's finaliser): random data from an index and a seed.
__device__ inline uint32_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return static_cast<uint32_t>(x ^ (x >> 33));
}

// Random int8 data from a seed.
__global__ void fill_int8(int8_t* p, int64_t n, uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p[i] = static_cast<int8_t>(mix(seed * 0x9e3779b97f4a7c15ull + i));
}

// Positive scales in [0.5e-3, 1.5e-3) with random mantissas.
__global__ void fill_scale(float* p, int64_t n, uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p[i] = (0.5f + (mix(seed * 0x9e3779b97f4a7c15ull + i) >> 8) * (1.0f / 16777216.0f)) * 1e-3f;
}

// The launch floor the probes print beside their timings.
__global__ void empty_kernel() {}

// One CUDA graph of `calls` enqueue(c) calls, instantiated and replayed 3 times to warm up.
template <class F>
cudaGraphExec_t warm_graph_of_calls(F&& enqueue, int calls, cudaStream_t stream) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CHECK_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  for (int c = 0; c < calls; ++c) enqueue(c);
  CHECK_CUDA(cudaStreamEndCapture(stream, &graph));
  CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  CHECK_CUDA(cudaGraphDestroy(graph));
  for (int w = 0; w < 3; ++w) CHECK_CUDA(cudaGraphLaunch(exec, stream));
  return exec;
}

// Reads n 16-byte words; stores only if their xor is a value it never is, so nothing is
// written and the loads stay.
__global__ void read_all(const uint4* p, int64_t n, uint4* sink) {
  uint4 acc = {0, 0, 0, 0};
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const uint4 v = p[i];
    acc.x ^= v.x, acc.y ^= v.y, acc.z ^= v.z, acc.w ^= v.w;
  }
  if (acc.x == 0x12345678u && acc.y == 0x9abcdef0u) *sink = acc;
}

// QB_PROBE_FLUSH=write (or read) in the environment: before every timed replay, write (read)
// twice the L2's bytes of a buffer of their own, so that a replay starts with none of its
// data in the L2 and with other data there (as one provider's replay after another's).
inline void flush_l2_if_asked(cudaStream_t stream) {
  static const char* mode = std::getenv("QB_PROBE_FLUSH");
  if (mode == nullptr) return;
  static int64_t bytes = 0;
  static uint4* buffer = nullptr;
  if (buffer == nullptr) {
    int device = 0, l2 = 0;
    CHECK_CUDA(cudaGetDevice(&device));
    CHECK_CUDA(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
    bytes = 2 * int64_t(l2);
    CHECK_CUDA(cudaMalloc(&buffer, bytes + 16));
    CHECK_CUDA(cudaMemsetAsync(buffer, 1, bytes + 16, stream));
  }
  if (mode[0] == 'w') {
    CHECK_CUDA(cudaMemsetAsync(buffer, 0, bytes, stream));
  } else {
    read_all<<<1024, 512, 0, stream>>>(buffer, bytes / 16, buffer + bytes / 16);
  }
}

// Median over `replays` replays of one CUDA graph of `calls` enqueue(c) calls, per call.
template <class F>
float median_ms_per_call(F&& enqueue, int calls, int replays, cudaStream_t stream) {
  const cudaGraphExec_t exec = warm_graph_of_calls(enqueue, calls, stream);
  std::vector<cudaEvent_t> events(2 * replays);
  for (auto& e : events) CHECK_CUDA(cudaEventCreate(&e));
  for (int r = 0; r < replays; ++r) {
    flush_l2_if_asked(stream);
    CHECK_CUDA(cudaEventRecord(events[2 * r], stream));
    CHECK_CUDA(cudaGraphLaunch(exec, stream));
    CHECK_CUDA(cudaEventRecord(events[2 * r + 1], stream));
  }
  CHECK_CUDA(cudaStreamSynchronize(stream));
  std::vector<float> per_call(replays);
  for (int r = 0; r < replays; ++r) {
    CHECK_CUDA(cudaEventElapsedTime(&per_call[r], events[2 * r], events[2 * r + 1]));
    per_call[r] /= calls;
  }
  for (auto& e : events) CHECK_CUDA(cudaEventDestroy(e));
  CHECK_CUDA(cudaGraphExecDestroy(exec));
  std::nth_element(per_call.begin(), per_call.begin() + replays / 2, per_call.end());
  return per_call[replays / 2];
}

// Device-to-device copy bandwidth of 1 GiB, read + write counted, timed with events (median
// of 20): the issues' ceiling for memory-bound kernels.
inline float copy_gbps(cudaStream_t stream) {
  const size_t bytes = size_t(1) << 30;
  void *src, *dst;
  CHECK_CUDA(cudaMalloc(&src, bytes));
  CHECK_CUDA(cudaMalloc(&dst, bytes));
  CHECK_CUDA(cudaMemsetAsync(src, 1, bytes, stream));
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  std::vector<float> ms(20);
  for (int i = -3; i < 20; ++i) {
    CHECK_CUDA(cudaEventRecord(start, stream));
    CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
    CHECK_CUDA(cudaEventRecord(stop, stream));
    CHECK_CUDA(cudaEventSynchronize(stop));
    if (i >= 0) CHECK_CUDA(cudaEventElapsedTime(&ms[i], start, stop));
  }
  std::sort(ms.begin(), ms.end());
  CHECK_CUDA(cudaFree(src));
  CHECK_CUDA(cudaFree(dst));
  return 2.0f * bytes / (ms[10] * 1e-3f) / 1e9f;
}

}  // namespace probe
