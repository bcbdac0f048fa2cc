// Standalone latency probe of the per-token-group quantization kernel
// (csrc/quantization/per_token_group_quant_kernel.cuh) on the small inputs of issue #2, where
// the target is the empty kernel's time plus 0.5 us. Without torch it builds in seconds, so one
// GPU call can time several edits of the kernel (PROBE=quant_latency_probe scripts/gpu_session.sh
// probe). For each shape, group size and variant (FP8 row- or column-major scales, with and without
// UE8M0; INT8), on bf16 input:
//   - checks the kernel bit for bit against a naive kernel (IEEE divisions, one thread a
//     group), into poisoned outputs (FP8 0x7f is NaN, INT8 0x80 is -128: neither is the
//     quantization of finite data);
//   - times it by CUDA-graph replay of back-to-back calls, as the benchmark does;
//   - times, the same way, two floors: the empty kernel (the benchmark's launch floor), and a
//     copy with the same grid and PDL launch (after the wait, each thread loads its chunk and
//     stores its bytes): what a kernel that waits for the one before it and moves these bytes,
//     but computes nothing, takes.
//
//   nvcc -std=c++20 -O3 -gencode=arch=compute_90a,code=sm_90a -Icsrc [-D...] \
//        scripts/quant_latency_probe.cu -o quant_latency_probe
//   ./quant_latency_probe [label]
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "probe_util.cuh"
#include "quantization/per_token_group_quant_kernel.cuh"

namespace {

using namespace probe;
namespace gq = qbench::group_quant;

// Random bf16 with a random magnitude per group (2^-12 .. 2^11), so that scales vary.
__global__ void fill_bf16(uint16_t* p, int64_t n, int group_size, uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int e = static_cast<int>(mix(seed ^ (0x51ed27ull * (i / group_size + 1))) % 24u) - 12;
    const float u = (mix(seed * 0x9e3779b97f4a7c15ull + i) >> 8) * (1.0f / 8388608.0f) - 1.0f;
    const float v = ldexpf(u, e);
    p[i] = __bfloat16_as_ushort(__float2bfloat16_rn(v));
  }
}

// One thread a group: the spec with IEEE divisions.
__global__ void naive_quant(const __nv_bfloat16* x, int64_t rows, int64_t cols, int group_size, bool fp8,
                            bool use_ue8m0, float eps, uint8_t* q, float* s, int64_t s_row_stride,
                            int64_t s_col_stride) {
  const int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t groups_per_row = cols / group_size;
  if (g >= rows * groups_per_row) return;
  const int64_t row = g / groups_per_row, cg = g % groups_per_row;
  const __nv_bfloat16* xg = x + row * cols + cg * group_size;
  float amax = 0.0f;
  for (int i = 0; i < group_size; ++i) amax = fmaxf(amax, fabsf(__bfloat162float(xg[i])));
  amax = fmaxf(amax, eps);
  float scale = __fdiv_rn(amax, fp8 ? 448.0f : 127.0f);
  if (use_ue8m0) {
    uint32_t b = __float_as_uint(scale);
    if (b & 0x007fffffu) b = (b & 0x7f800000u) + 0x00800000u;
    scale = __uint_as_float(b);
  }
  for (int i = 0; i < group_size; ++i) {
    const float v = __fdiv_rn(__bfloat162float(xg[i]), scale);
    uint8_t out;
    if (fp8) {
      out = static_cast<uint8_t>(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
    } else {
      out = static_cast<uint8_t>(static_cast<int8_t>(max(-128, min(127, __float2int_rn(v)))));
    }
    q[row * cols + cg * group_size + i] = out;
  }
  s[row * s_row_stride + cg * s_col_stride] = scale;
}

// The copy floor: the quantization kernel's grid, its PDL wait, its loads and its stores, no math.
__global__ void __launch_bounds__(gq::kMaxThreadsPerBlock) copy_floor(const uint4* x, uint4* q, uint64_t items) {
  const uint64_t item = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (item >= items) return;
  qbench::pdl_wait();
  const uint4 a = x[2 * item], b = x[2 * item + 1];
  q[item] = make_uint4(a.x ^ b.x, a.y ^ b.y, a.z ^ b.z, a.w ^ b.w);
}

struct Variant {
  const char* name;
  bool fp8, column_major, ue8m0;
};

constexpr Variant kVariants[] = {
    {"fp8 row", true, false, false},     {"fp8 row ue8m0", true, false, true}, {"fp8 col", true, true, false},
    {"fp8 col ue8m0", true, true, true}, {"int8 row", false, false, false},
};

}  // namespace

int main(int argc, char** argv) {
  const char* label = argc > 1 ? argv[1] : "kernel";
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  constexpr int kCalls = 100, kReplays = 200;
  const float empty_us =
      1e3f * median_ms_per_call([&](int) { empty_kernel<<<1, 32, 0, stream>>>(); }, kCalls, kReplays, stream);
  int clock_khz = 0;
  CHECK_CUDA(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0));
  std::printf("# %s: %s (SM clock up to %d MHz), empty kernel %.3f us (graph of %d calls, median of %d replays), "
              "target %.3f us\n",
              label, prop.name, clock_khz / 1000, empty_us, kCalls, kReplays, empty_us + 0.5f);
  std::printf("%-9s %4s %-14s %9s %9s %7s %s\n", "shape", "G", "variant", "ours(us)", "floor(us)", "target",
              "exact");

  const int64_t shapes[][2] = {{32, 128}, {64, 256}, {16, 512}, {128, 7168}};
  bool all_exact = true;
  for (const auto& shape : shapes) {
    const int64_t rows = shape[0], cols = shape[1], n = rows * cols;
    __nv_bfloat16* x;
    uint8_t *q, *q_ref;
    float *s, *s_ref;
    CHECK_CUDA(cudaMalloc(&x, n * 2));
    CHECK_CUDA(cudaMalloc(&q, n));
    CHECK_CUDA(cudaMalloc(&q_ref, n));
    CHECK_CUDA(cudaMalloc(&s, n / 32 * 4));
    CHECK_CUDA(cudaMalloc(&s_ref, n / 32 * 4));
    for (int group_size : {64, 128}) {
      fill_bf16<<<64, 256, 0, stream>>>(reinterpret_cast<uint16_t*>(x), n, group_size, 1234 + group_size);
      const int64_t groups = cols / group_size;
      for (const Variant& v : kVariants) {
        const int64_t s_row = v.column_major ? 1 : groups, s_col = v.column_major ? rows : 1;
        CHECK_CUDA(cudaMemsetAsync(q, v.fp8 ? 0x7f : 0x80, n, stream));
        CHECK_CUDA(cudaMemsetAsync(s, 0xff, rows * groups * 4, stream));
        const gq::GroupQuantParams p =
            gq::make_params(x, cols, 2, q, cols, s, s_row, s_col, rows, cols, group_size, 1e-10f, v.ue8m0, v.fp8);
        auto launch = [&] {
          CHECK_CUDA((v.fp8 ? gq::launch<__nv_bfloat16, gq::Fp8Out>(p, stream)
                            : gq::launch<__nv_bfloat16, gq::Int8Out>(p, stream)));
        };
        launch();
        naive_quant<<<(rows * groups + 127) / 128, 128, 0, stream>>>(x, rows, cols, group_size, v.fp8, v.ue8m0,
                                                                     1e-10f, q_ref, s_ref, s_row, s_col);
        CHECK_CUDA(cudaStreamSynchronize(stream));
        std::vector<uint8_t> got(n), want(n);
        std::vector<float> got_s(rows * groups), want_s(rows * groups);
        CHECK_CUDA(cudaMemcpy(got.data(), q, n, cudaMemcpyDeviceToHost));
        CHECK_CUDA(cudaMemcpy(want.data(), q_ref, n, cudaMemcpyDeviceToHost));
        CHECK_CUDA(cudaMemcpy(got_s.data(), s, got_s.size() * 4, cudaMemcpyDeviceToHost));
        CHECK_CUDA(cudaMemcpy(want_s.data(), s_ref, want_s.size() * 4, cudaMemcpyDeviceToHost));
        const bool exact =
            got == want && std::memcmp(got_s.data(), want_s.data(), got_s.size() * 4) == 0;
        all_exact = all_exact && exact;

        const float ours_us = 1e3f * median_ms_per_call([&](int) { launch(); }, kCalls, kReplays, stream);
        const uint64_t items = uint64_t(n) / 16;
        const int threads = gq::block_threads(items);
        const float floor_us = 1e3f * median_ms_per_call(
                                          [&](int) {
                                            CHECK_CUDA(qbench::launch_with_pdl(
                                                copy_floor, dim3(static_cast<unsigned>((items + threads - 1) / threads)),
                                                dim3(threads), stream, reinterpret_cast<const uint4*>(x),
                                                reinterpret_cast<uint4*>(q), items));
                                          },
                                          kCalls, kReplays, stream);
        std::printf("%4ldx%-4ld %4d %-14s %9.3f %9.3f %7s %s\n", rows, cols, group_size, v.name, ours_us, floor_us,
                    ours_us <= empty_us + 0.5f ? "met" : "MISSED", exact ? "yes" : "NO");
      }
    }
    CHECK_CUDA(cudaFree(x));
    CHECK_CUDA(cudaFree(q));
    CHECK_CUDA(cudaFree(q_ref));
    CHECK_CUDA(cudaFree(s));
    CHECK_CUDA(cudaFree(s_ref));
  }
  std::printf("# %s: %s\n", label, all_exact ? "all exact" : "MISMATCH");
  return all_exact ? 0 : 1;
}
