// The background quantizer of a fused dynamic-quantization GEMM, measured alone (no torch).
//
// In the fused design of this directory's README, warps the pingpong GEMM leaves idle quantize
// the activation while the consumers run the main loop: rows r = cta, cta + grid, ... of x go
// through a shared-memory ring filled by the copy engine (cp.async.bulk, one row a copy; the
// spare warps have 40 registers, too few to keep a row in flight), each is reduced and
// quantized from shared memory, q and the scale are stored, and the row is counted done in its
// 128-row block, which is what the GEMM's load warp would wait for. This probe runs only that:
// one CTA an SM (its shared memory keeps a second one out, as the GEMM's would), QB_WORKERS
// of its 4 warps quantizing (1: the one warp CUTLASS's MainloopAux hook gives), the ring
// limited to QB_RING_KB (default 64: what two fewer mainloop stages of 32 KB free). It prints
// a call's time, the bandwidth that is (3 M K bytes: x read, q written), and when blocks 0, 4
// (the last one the first wave of 128 x 128 tiles needs at N = 4096) and the last were
// complete, from the first CTA's start; and it checks q and the scales bit for bit against a
// plain kernel (a warp a row, global loads) with the same arithmetic.
//
// Needs csrc/gemm/background_quant_row.cuh, which background_quant_gemm.patch (this directory)
// adds (run_worker_probe.sh applies it to a copy of csrc/):
//   nvcc -std=c++20 -O3 -gencode=arch=compute_90a,code=sm_90a -Icsrc -Iscripts \
//        docs/pending/fused-quant-in-main-loop/quant_worker_probe.cu -o quant_worker_probe
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "probe_activation.cuh"
#include "probe_util.cuh"
#include "gemm/background_quant_row.cuh"

namespace {

using namespace qbench::int8_mm::background_quant;
using qbench::int8_quant::kElemsPerChunk;
using T = __nv_bfloat16;
constexpr int kBlockRows = 128;
constexpr int kThreads = 128;  // a warp group, as the GEMM's producer
constexpr int kMaxSlots = 16;  // per worker warp
constexpr int kBarrierBytes = 4 * kMaxSlots * 8;

struct Params {
  const T* x;
  int8_t* q;
  float* scale;
  uint32_t* block_rows_done;
  unsigned long long* row_done_ns;
  unsigned long long* cta_start_ns;
  int64_t m;
  int k;
  int workers;  // warps of a CTA that quantize
  int slots;    // ring slots a worker warp
  int slot_bytes;
};

__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void __launch_bounds__(kThreads, 1) worker_kernel(const Params p) {
  extern __shared__ __align__(128) uint8_t smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (threadIdx.x == 0) p.cta_start_ns[blockIdx.x] = global_ns();
  if (warp >= p.workers) return;
  uint64_t* bars = reinterpret_cast<uint64_t*>(smem) + warp * kMaxSlots;
  uint8_t* ring = smem + kBarrierBytes + static_cast<int64_t>(warp) * p.slots * p.slot_bytes;
  if (lane == 0) init_slot_barriers(bars, p.slots);
  __syncwarp();
  // This warp's rows: first, first + step, ...; the i-th goes through slot i % slots.
  const int64_t first = blockIdx.x * int64_t(p.workers) + warp;
  const int64_t step = int64_t(gridDim.x) * p.workers;
  auto issue = [&](int64_t i) {
    const int64_t row = first + i * step;
    if (lane == 0 && row < p.m) {
      copy_row(ring + (i % p.slots) * p.slot_bytes, p.x + row * p.k, static_cast<uint32_t>(p.k) * sizeof(T),
               bars + i % p.slots);
    }
  };
  for (int i = 0; i < p.slots; ++i) issue(i);
  const int chunks = p.k / kElemsPerChunk<T>;
  for (int64_t i = 0;; ++i) {
    const int64_t row = first + i * step;
    if (row >= p.m) break;
    const int s = static_cast<int>(i % p.slots);
    wait_parity(bars + s, static_cast<uint32_t>((i / p.slots) & 1));
    quantize_row<T>(reinterpret_cast<const uint4*>(ring + s * p.slot_bytes), chunks, lane, p.q + row * p.k,
                    p.scale + row);
    __syncwarp();  // every lane is done with the slot
    issue(i + p.slots);
    // q would be read by other CTAs' TMA loads (the async proxy) once they see the count.
    asm volatile("fence.proxy.async.global;\n" ::: "memory");
    __threadfence();
    __syncwarp();
    if (lane == 0) {
      asm volatile("red.release.gpu.global.add.u32 [%0], 1;\n" ::"l"(p.block_rows_done + row / kBlockRows)
                   : "memory");
      p.row_done_ns[row] = global_ns();
    }
  }
}



int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const char* label = argc > 1 ? argv[1] : "worker";
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const int workers = std::clamp(env_int("QB_WORKERS", 1), 1, 4);
  const int ring_bytes = env_int("QB_RING_KB", 64) * 1024;
  const int sms = prop.multiProcessorCount;
  std::printf("# %s: %s, %d SMs, copy %.0f GB/s, %d worker warp(s) a CTA, ring %d KB a CTA\n", label, prop.name, sms,
              probe::copy_gbps(stream), workers, ring_bytes / 1024);
  std::printf("%-10s %6s %6s %5s %9s %7s %9s %9s %9s %s\n", "variant", "M", "K", "slots", "us", "GB/s", "block0_us",
              "block4_us", "last_us", "check");
  for (const int k : {4096, 14336}) {
    for (const int64_t m : {1024, 4096, 16384}) {
      Params p{};
      p.m = m, p.k = k, p.workers = workers;
      p.slot_bytes = (k * int(sizeof(T)) + 127) / 128 * 128;
      p.slots = std::min(kMaxSlots, ring_bytes / (workers * p.slot_bytes));
      if (p.slots < 1) {
        std::printf("%-10s %6lld %6d  (a row does not fit the ring)\n", label, static_cast<long long>(m), k);
        continue;
      }
      const int64_t blocks = (m + kBlockRows - 1) / kBlockRows;
      T* x;
      int8_t *q, *q_ref;
      float *scale, *scale_ref;
      CHECK_CUDA(cudaMalloc(&x, m * k * sizeof(T)));
      CHECK_CUDA(cudaMalloc(&q, m * k));
      CHECK_CUDA(cudaMalloc(&q_ref, m * k));
      CHECK_CUDA(cudaMalloc(&scale, m * 4));
      CHECK_CUDA(cudaMalloc(&scale_ref, m * 4));
      CHECK_CUDA(cudaMalloc(&p.block_rows_done, blocks * 4));
      CHECK_CUDA(cudaMalloc(&p.row_done_ns, m * 8));
      CHECK_CUDA(cudaMalloc(&p.cta_start_ns, sms * 8));
      p.x = x, p.q = q, p.scale = scale;
      probe::fill_x<<<1024, 256, 0, stream>>>(x, m, k, m + k);
      CHECK_CUDA(cudaMemsetAsync(q, 0x5a, m * k, stream));  // poison: an unwritten byte shows
      CHECK_CUDA(cudaMemsetAsync(scale, 0xff, m * 4, stream));
      probe::reference_quant(x, q_ref, scale_ref, m, k, stream);
      // Shared memory past what one CTA an SM leaves room for, as the GEMM's does.
      const int smem = std::max(kBarrierBytes + workers * p.slots * p.slot_bytes, 120 * 1024);
      CHECK_CUDA(cudaFuncSetAttribute(worker_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
      auto call = [&](int) {
        CHECK_CUDA(cudaMemsetAsync(p.block_rows_done, 0, blocks * 4, stream));
        worker_kernel<<<sms, kThreads, smem, stream>>>(p);
      };
      call(0);
      CHECK_CUDA(cudaStreamSynchronize(stream));
      CHECK_CUDA(cudaGetLastError());
      // The check, and the block completion times of that first call.
      std::vector<int8_t> hq(m * k), hq_ref(m * k);
      std::vector<float> hs(m), hs_ref(m);
      std::vector<uint32_t> hcount(blocks);
      std::vector<unsigned long long> hdone(m), hstart(sms);
      CHECK_CUDA(cudaMemcpy(hq.data(), q, m * k, cudaMemcpyDeviceToHost));
      CHECK_CUDA(cudaMemcpy(hq_ref.data(), q_ref, m * k, cudaMemcpyDeviceToHost));
      CHECK_CUDA(cudaMemcpy(hs.data(), scale, m * 4, cudaMemcpyDeviceToHost));
      CHECK_CUDA(cudaMemcpy(hs_ref.data(), scale_ref, m * 4, cudaMemcpyDeviceToHost));
      CHECK_CUDA(cudaMemcpy(hcount.data(), p.block_rows_done, blocks * 4, cudaMemcpyDeviceToHost));
      CHECK_CUDA(cudaMemcpy(hdone.data(), p.row_done_ns, m * 8, cudaMemcpyDeviceToHost));
      CHECK_CUDA(cudaMemcpy(hstart.data(), p.cta_start_ns, sms * 8, cudaMemcpyDeviceToHost));
      bool exact = std::equal(hq.begin(), hq.end(), hq_ref.begin()) &&
                   std::equal(reinterpret_cast<uint32_t*>(hs.data()), reinterpret_cast<uint32_t*>(hs.data()) + m,
                              reinterpret_cast<uint32_t*>(hs_ref.data()));
      for (int64_t b = 0; b < blocks; ++b)
        exact = exact && hcount[b] == static_cast<uint32_t>(std::min<int64_t>(kBlockRows, m - b * kBlockRows));
      const unsigned long long t0 = *std::min_element(hstart.begin(), hstart.end());
      auto block_done_us = [&](int64_t b) {
        b = std::min(b, blocks - 1);
        unsigned long long t = 0;
        for (int64_t r = b * kBlockRows; r < std::min(m, (b + 1) * kBlockRows); ++r) t = std::max(t, hdone[r]);
        return (t - t0) * 1e-3;
      };
      const float ms = probe::median_ms_per_call(call, 10, 20, stream);
      std::printf("%-10s %6lld %6d %5d %9.2f %7.0f %9.2f %9.2f %9.2f %s\n", label, static_cast<long long>(m), k,
                  p.slots, 1e3f * ms, 3.0 * m * k / (ms * 1e-3) * 1e-9, block_done_us(0), block_done_us(4),
                  block_done_us(blocks - 1), exact ? "exact" : "MISMATCH");
      for (void* ptr : std::vector<void*>{x, q, q_ref, scale, scale_ref, p.block_rows_done, p.row_done_ns,
                                          p.cta_start_ns})
        CHECK_CUDA(cudaFree(ptr));
    }
  }
  return 0;
}
