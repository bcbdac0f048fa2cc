// Standalone timing probe of the decode GEMM kernel (csrc/gemm/int8_scaled_mm_decode.cu),
// without torch: it builds in seconds, so one GPU call can time several edits of the kernel
// (scripts/gpu_session.sh probe builds one binary per set of -D flags it is given). For each
// Llama-3.1-8B TP1 weight shape and M in {1, 16}:
//   - checks the kernel bit for bit against a naive kernel (exact int32 dot product, then
//     the same fp32 epilogue instructions), on random data, into a NaN-poisoned output;
//   - times it by CUDA-graph replay of back-to-back calls, rotating through enough weight
//     copies to exceed L2 (as in a forward pass), median of the replays;
//   - prints the time beside the floor: the weight's bytes at the copy bandwidth measured in
//     the same run (1 GiB device-to-device, read + write counted), the issue's yardstick;
//   - times the kernel both ways: `wait` reads the weight only after the PDL wait, `early`
//     loads its first stage before it (Problem::b_ready_before_launch, the dispatcher's
//     usual choice);
//   - times, the same way, a plain streaming read of the weight, ordered against the kernel
//     before it in four ways (read_kernel's ReadMode), with QB_READ_CTAS_PER_SM CTAs of
//     QB_READ_THREADS threads an SM (4 x 512 by default; 2 x 256 is the decode GEMM's
//     occupancy), and the same read by the copy engine (bulk_read_kernel, its QB_BULK_* flags).
//
//   nvcc -std=c++20 -O3 -gencode=arch=compute_90a,code=sm_90a --expt-relaxed-constexpr -Icsrc [-D...] \
//        scripts/decode_probe.cu -o decode_probe
//   ./decode_probe [label]
//   QB_PROFILE=4096,4096,16 ncu ... ./decode_probe   # one problem (N, K, M), checked, no timing
//   QB_PROBE_WEIGHT_COPIES=1 ./decode_probe   # one weight, L2-resident between calls
//   QB_PROBE_GEMM_ONLY=1 ./decode_probe       # the GEMM rows only
//   QB_PROBE_MS=1,5,16,40 ./decode_probe      # those token counts (default 1, 16)
//   QB_PROBE_NK=5120x5120,4608x3584 ./decode_probe   # those weight shapes (default Llama-3.1-8B's)
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "gemm/int8_scaled_mm_decode.cu"
#include "decode_probe_inputs.cuh"

#ifndef QB_READ_CTAS_PER_SM
#define QB_READ_CTAS_PER_SM 4
#endif
#ifndef QB_READ_THREADS
#define QB_READ_THREADS 512
#endif

namespace {

using namespace probe;

__global__ void fill_u16(uint16_t* p, int64_t n, uint16_t value) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p[i] = value;
}

// One thread per output: the exact int32 sum, then the epilogue of the kernel under test.
__global__ void naive_gemm(const int8_t* a, const int8_t* b, const float* sa, const float* sb, int m, int n, int k,
                           __nv_bfloat16* out) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= int64_t(m) * n) return;
  const int row = static_cast<int>(i / n), col = static_cast<int>(i % n);
  int32_t acc = 0;
  for (int j = 0; j < k; ++j) acc += int32_t(a[int64_t(row) * k + j]) * int32_t(b[int64_t(col) * k + j]);
  out[i] = __float2bfloat16_rn(__fmaf_rn(sb[col], __fmul_rn(sa[row], __int2float_rn(acc)), 0.0f));
}

// The read ceilings: each thread streams 16-byte vectors (grid-stride), one word out per
// thread so that nothing is optimised away. How the read is ordered against the kernel before
// it (launched with PDL but for kPlain):
//   kPlain      a plain launch: starts once the kernel before has completed;
//   kNeverWait  triggers its dependents at once and never waits: how far back-to-back reads
//               overlap at best (a GEMM must wait before it reads the activations);
//   kHalfWait   reads its first half, waits, then triggers its dependents and reads the rest:
//               the decode GEMM's order (its first stage before the wait, core/pdl.cuh);
//   kTriggerHalfWait  the same, but triggers its dependents at once, before the wait.
enum ReadMode : int { kPlain, kNeverWait, kHalfWait, kTriggerHalfWait };
constexpr const char* kReadModeNames[] = {"plain", "never", "half", "trig-half"};

__device__ __forceinline__ uint32_t read_range(const uint4* src, int64_t begin, int64_t end) {
  uint32_t acc = 0;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = begin + blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < end; i += stride) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(src + i));
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  return acc;
}

// A read's PDL calls: at its start (the modes that let the next kernel in at once), and at its
// wait (the modes that wait half way).
template <ReadMode kMode>
__device__ __forceinline__ void trigger_at_start() {
  if (kMode == kNeverWait || kMode == kTriggerHalfWait) asm volatile("griddepcontrol.launch_dependents;");
}
template <ReadMode kMode>
__device__ __forceinline__ void wait_half_way() {
  if (kMode == kHalfWait) {
    qbench::pdl_wait();  // wait, then trigger: the decode GEMM's own call
  } else {
    asm volatile("griddepcontrol.wait;" ::: "memory");
  }
}

template <ReadMode kMode>
__global__ void __launch_bounds__(512) read_kernel(const uint4* src, int64_t n, uint32_t* sink) {
  trigger_at_start<kMode>();
  uint32_t acc;
  if (kMode == kHalfWait || kMode == kTriggerHalfWait) {
    acc = read_range(src, 0, n / 2);
    wait_half_way<kMode>();
    acc ^= read_range(src, n / 2, n);
  } else {
    acc = read_range(src, 0, n);
  }
  if (acc == 0x12345678u) sink[threadIdx.x] = acc;
}
constexpr decltype(&read_kernel<kPlain>) kReadKernels[] = {read_kernel<kPlain>, read_kernel<kNeverWait>,
                                                          read_kernel<kHalfWait>, read_kernel<kTriggerHalfWait>};

// The same read by the copy engine: a CTA of one thread streams the CTA's 16 KB pieces of the
// weight (piece j to CTA j % grid) into a ring of QB_BULK_STAGES shared-memory slots with
// cp.async.bulk, each slot's completion counted on an mbarrier, re-filling a slot as soon as
// its bytes have landed (nothing reads them: a ceiling, as above). Few threads hold many bytes
// in flight, so it says whether the copy engine reaches the floor at the decode GEMM's
// occupancy, where the load instructions of read_kernel do not.
#ifndef QB_BULK_STAGES
#define QB_BULK_STAGES 4
#endif
#ifndef QB_BULK_CTAS_PER_SM
#define QB_BULK_CTAS_PER_SM 1
#endif
constexpr int kBulkStages = QB_BULK_STAGES;
constexpr int kBulkPieceBytes = 16384;
#ifndef QB_BULK_ROWS
#define QB_BULK_ROWS 0
#endif
// 0: a piece is 16 KB of contiguous weight; R > 0: R rows x 16 KB / R bytes of k (R copies), as a
// GEMM CTA owning R rows would read it (K must be a multiple of 16 KB / R: R = 8 or 16 here).
constexpr int kBulkRows = QB_BULK_ROWS;
template <ReadMode kMode>
__global__ void __launch_bounds__(1) bulk_read_kernel(const int8_t* src, int64_t bytes, int64_t k) {
  extern __shared__ __align__(128) uint8_t ring[];
  __shared__ __align__(8) uint64_t full[kBulkStages];
  trigger_at_start<kMode>();
  const int64_t pieces = (bytes + kBulkPieceBytes - 1) / kBulkPieceBytes;
  const int64_t mine = pieces > blockIdx.x ? (pieces - 1 - blockIdx.x) / gridDim.x + 1 : 0;
  const int64_t first_after_wait = kMode == kPlain || kMode == kNeverWait ? mine : mine / 2;
  bool waited = kMode == kPlain || kMode == kNeverWait;
  auto full_bar = [&](int64_t t) { return static_cast<uint32_t>(__cvta_generic_to_shared(&full[t % kBulkStages])); };
  for (int s = 0; s < kBulkStages; ++s) asm volatile("mbarrier.init.shared.b64 [%0], 1;" ::"r"(full_bar(s)));
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  auto issue = [&](int64_t t) {
    const int s = static_cast<int>(t % kBulkStages);
    const int64_t offset = (blockIdx.x + t * gridDim.x) * int64_t(kBulkPieceBytes);
    const int64_t left = bytes - offset;
    const uint32_t size = static_cast<uint32_t>(left < kBulkPieceBytes ? left : kBulkPieceBytes);
    const uint32_t bar = full_bar(t);
    const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(ring + s * kBulkPieceBytes));
    asm volatile("mbarrier.arrive.expect_tx.shared.b64 _, [%0], %1;" ::"r"(bar), "r"(size) : "memory");
    if (kBulkRows == 0) {
      asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst),
                   "l"(src + offset), "r"(size), "r"(bar)
                   : "memory");
    } else {
      constexpr int kWidth = kBulkPieceBytes / (kBulkRows > 0 ? kBulkRows : 1);
      const int64_t piece = offset / kBulkPieceBytes, k_pieces = k / kWidth;
      const int8_t* base = src + (piece / k_pieces) * kBulkRows * k + (piece % k_pieces) * kWidth;
      for (int r = 0; r < kBulkRows; ++r) {
        asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                         dst + r * kWidth),
                     "l"(base + r * k), "n"(kWidth), "r"(bar)
                     : "memory");
      }
    }
  };
  auto wait_before = [&](int64_t t) {
    if (!waited && t >= first_after_wait) {
      wait_half_way<kMode>();
      waited = true;
    }
  };
  for (int64_t t = 0; t < int64_t(kBulkStages) && t < mine; ++t) {
    wait_before(t);
    issue(t);
  }
  for (int64_t t = 0; t < mine; ++t) {
    const uint32_t bar = full_bar(t);
    const uint32_t parity = static_cast<uint32_t>((t / kBulkStages) & 1);
    uint32_t done = 0;
    while (!done) {
      asm volatile(
          "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
          : "=r"(done)
          : "r"(bar), "r"(parity)
          : "memory");
    }
    if (t + kBulkStages < mine) {
      wait_before(t + kBulkStages);
      issue(t + kBulkStages);
    }
  }
  if (!waited) wait_half_way<kMode>();  // a CTA without a piece still takes part in the PDL order
}
constexpr decltype(&bulk_read_kernel<kPlain>) kBulkReadKernels[] = {
    bulk_read_kernel<kPlain>, bulk_read_kernel<kNeverWait>, bulk_read_kernel<kHalfWait>,
    bulk_read_kernel<kTriggerHalfWait>};

}  // namespace

int main(int argc, char** argv) {
  using qbench::int8_mm::Problem;
  const char* label = argc > 1 ? argv[1] : "decode";
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  const float gbps = copy_gbps(stream);
  const float empty_us =
      1e3f * median_ms_per_call([&](int) { empty_kernel<<<1, 32, 0, stream>>>(); }, 100, 50, stream);
  std::printf("# %s: %s, copy %.0f GB/s, empty kernel %.2f us (graph)\n", label, prop.name, gbps, empty_us);
  std::printf("%-10s %-9s %6s %6s %6s %9s %9s %7s %s\n", "variant", "b", "M", "N", "K", "us", "floor_us", "floor%",
              "check");

  // QB_PROFILE=N,K,M (for ncu): that problem only, its check and a few back-to-back calls, no timing.
  int profile[3] = {0, 0, 0};
  if (const char* spec = std::getenv("QB_PROFILE")) std::sscanf(spec, "%d,%d,%d", &profile[0], &profile[1], &profile[2]);
  const bool profiling = profile[0] > 0;

  bool all_ok = true;
  for (const auto& nk : decode_shapes()) {
    const int n = nk[0], k = nk[1];
    if (profiling && (n != profile[0] || k != profile[1])) continue;
    const int64_t weight_bytes = int64_t(n) * k;
    const std::vector<int8_t*> weights = weight_copies(weight_bytes, prop, stream);
    const int copies = static_cast<int>(weights.size());
    // QB_PROBE_GEMM_ONLY=1: the GEMM rows only, without the read ceilings.
    const bool gemm_only = profiling || std::getenv("QB_PROBE_GEMM_ONLY") != nullptr;
    if (!gemm_only) {
      uint32_t* sink;
      CHECK_CUDA(cudaMalloc(&sink, 4096));
      for (const ReadMode mode : {kPlain, kNeverWait, kHalfWait, kTriggerHalfWait}) {
        const auto kernel = kReadKernels[mode];
        const float us = 1e3f * median_ms_per_call(
                                    [&](int c) {
                                      const auto* src = reinterpret_cast<const uint4*>(weights[c % copies]);
                                      const dim3 grid(prop.multiProcessorCount * QB_READ_CTAS_PER_SM);
                                      const dim3 block(QB_READ_THREADS);
                                      if (mode == kPlain) {
                                        kernel<<<grid, block, 0, stream>>>(src, weight_bytes / 16, sink);
                                      } else {
                                        CHECK_CUDA(qbench::launch_with_pdl(kernel, grid, block, stream, src,
                                                                           weight_bytes / 16, sink));
                                      }
                                    },
                                    calls_per_graph(copies), 30, stream);
        const float floor_us = weight_bytes / (gbps * 1e3f);
        std::printf("%-10s %-9s %6s %6d %6d %9.2f %9.2f %6.1f%% %s\n", "read", kReadModeNames[mode], "-", n, k, us,
                    floor_us, 100.0f * floor_us / us, "-");
      }
      CHECK_CUDA(cudaFree(sink));
    }
    for (const ReadMode mode : {kPlain, kHalfWait, kTriggerHalfWait}) {
      if (gemm_only) break;
      const auto kernel = kBulkReadKernels[mode];
      const size_t shared = size_t(kBulkStages) * kBulkPieceBytes;
      CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared)));
      const float us = 1e3f * median_ms_per_call(
                                  [&](int c) {
                                    const dim3 grid(prop.multiProcessorCount * QB_BULK_CTAS_PER_SM), block(1);
                                    if (mode == kPlain) {
                                      kernel<<<grid, block, shared, stream>>>(weights[c % copies], weight_bytes,
                                                                              int64_t(k));
                                    } else {
                                      CHECK_CUDA(qbench::launch_with_pdl_shared(kernel, grid, block, shared, stream,
                                                                                weights[c % copies], weight_bytes,
                                                                                int64_t(k)));
                                    }
                                  },
                                  calls_per_graph(copies), 30, stream);
      const float floor_us = weight_bytes / (gbps * 1e3f);
      std::printf("%-10s %-9s %6s %6d %6d %9.2f %9.2f %6.1f%% %s\n", "bulk", kReadModeNames[mode], "-", n, k, us,
                  floor_us, 100.0f * floor_us / us, "-");
    }
    for (int m : decode_token_counts()) {
      if (profiling && m != profile[2]) continue;
      __nv_bfloat16 *out, *expected;
      CHECK_CUDA(cudaMalloc(&out, int64_t(m) * n * sizeof(__nv_bfloat16)));
      CHECK_CUDA(cudaMalloc(&expected, int64_t(m) * n * sizeof(__nv_bfloat16)));
      fill_u16<<<1024, 256, 0, stream>>>(reinterpret_cast<uint16_t*>(out), int64_t(m) * n, 0x7fc1);  // NaN
      Problem p = decode_problem(m, n, k, out, prop, stream);

      p.b = weights[0];
      p.b_ready_before_launch = true;
      std::string err = qbench::int8_mm::sm90_decode_mma_16x16_ksplit8(p);
      if (!err.empty()) {
        std::fprintf(stderr, "launch failed: %s\n", err.c_str());
        return 2;
      }
      naive_gemm<<<static_cast<unsigned>((int64_t(m) * n + 255) / 256), 256, 0, stream>>>(
          p.a, weights[0], p.scale_a, p.scale_b, m, n, k, expected);
      CHECK_CUDA(cudaStreamSynchronize(stream));
      std::vector<uint16_t> got(int64_t(m) * n), want(int64_t(m) * n);
      CHECK_CUDA(cudaMemcpy(got.data(), out, got.size() * 2, cudaMemcpyDeviceToHost));
      CHECK_CUDA(cudaMemcpy(want.data(), expected, want.size() * 2, cudaMemcpyDeviceToHost));
      int64_t mismatches = 0;
      for (size_t i = 0; i < got.size(); ++i) mismatches += got[i] != want[i];
      all_ok = all_ok && mismatches == 0;
      if (profiling) {
        for (int c = 1; c <= 4; ++c) {
          Problem q = p;
          q.b = weights[c % copies];
          if (!qbench::int8_mm::sm90_decode_mma_16x16_ksplit8(q).empty()) return 3;
        }
        CHECK_CUDA(cudaStreamSynchronize(stream));
        std::printf("profiled M=%d N=%d K=%d: %s\n", m, n, k, mismatches == 0 ? "exact" : "MISMATCH");
      }
      // Timed both ways: reading the weight only after the PDL wait, and before it (what the
      // dispatcher allows when no PDL kernel of ours just wrote it).
      for (const bool ready : {false, true}) {
        if (profiling) break;
        const float us = 1e3f * median_ms_per_call(
                                    [&](int c) {
                                      Problem q = p;
                                      q.b = weights[c % copies];
                                      q.b_ready_before_launch = ready;
                                      const std::string e = qbench::int8_mm::sm90_decode_mma_16x16_ksplit8(q);
                                      if (!e.empty()) std::exit(3);
                                    },
                                    calls_per_graph(copies), 30, stream);
        const float floor_us = weight_bytes / (gbps * 1e3f);
        std::printf("%-10s %-9s %6d %6d %6d %9.2f %9.2f %6.1f%% %s\n", label, ready ? "early" : "wait", m, n, k, us,
                    floor_us, 100.0f * floor_us / us, mismatches == 0 ? "exact" : "MISMATCH");
      }
      free_problem(p);
      CHECK_CUDA(cudaFree(out));
      CHECK_CUDA(cudaFree(expected));
    }
    for (int8_t* w : weights) CHECK_CUDA(cudaFree(w));
  }
  return all_ok ? 0 : 1;
}
