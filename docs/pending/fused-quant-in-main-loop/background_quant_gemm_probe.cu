// The 128x128 pingpong GEMM quantizing its own activation in the background
// (csrc/gemm/int8_scaled_mm_background_quant.cuh, launched by int8_scaled_mm_sm90_quant_a.cu)
// against the same GEMM on an activation quantized ahead, without torch: bit-exactness of q, the scales and the output (all three
// poisoned first) against a plain quantization kernel with the same arithmetic followed by the
// plain GEMM, then CUDA-graph replays of back-to-back calls of each, median per call.
//
//   nvcc -std=c++20 -O3 -DNDEBUG -gencode=arch=compute_90a,code=sm_90a --expt-relaxed-constexpr \
//        -Icsrc -Iscripts -I<cutlass>/include -I<cutlass>/tools/util/include \
//        docs/pending/fused-quant-in-main-loop/background_quant_gemm_probe.cu -o background_quant_gemm_probe
// (run_background_quant_gemm_probe.sh: the same with the carried CUTLASS).
#define CUTLASS_ENABLE_GDC_FOR_SM90
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

// The fused launcher's translation unit, so that the probe runs what the op runs (its grid,
// tile order and limits) and can name what it names in its unnamed namespace.
#include "gemm/int8_scaled_mm_sm90_quant_a.cu"
#include "probe_activation.cuh"
#include "probe_util.cuh"

namespace {

using namespace qbench::int8_mm;
using Plain = Sm90Int8Gemm<QuantAConfig, cutlass::bfloat16_t>;

void* alloc(void*, size_t bytes) {
  void* p = nullptr;
  CHECK_CUDA(cudaMalloc(&p, bytes));
  return p;
}

template <class V>
bool same_bytes(const V* a, const V* b, int64_t n) {
  std::vector<V> ha(n), hb(n);
  CHECK_CUDA(cudaMemcpy(ha.data(), a, n * sizeof(V), cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(hb.data(), b, n * sizeof(V), cudaMemcpyDeviceToHost));
  return std::memcmp(ha.data(), hb.data(), n * sizeof(V)) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  const char* label = argc > 1 ? argv[1] : "background";
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  const int grid_ctas = co_resident_ctas(0, prop.multiProcessorCount);
  std::printf("# %s: %s, grid %d CTAs, plain kernel %d B of shared memory, fused %d B (%d KB ring)\n", label,
              prop.name, grid_ctas, int(Plain::GemmKernel::SharedStorageSize), int(QuantAKernel::SharedStorageSize),
              QB_BG_RING_KB);
  std::printf("%-8s %6s %6s %6s %8s %8s %8s %8s %8s %8s   %s\n", "variant", "M", "N", "K", "noquant", "noq_N",
              "two", "bg", "wave", "all", "extra over noquant: two / bg / wave / all; checks");
  const int shapes[][2] = {{4096, 4096}, {6144, 4096}, {28672, 4096}, {4096, 14336}};
  for (const auto& nk : shapes) {
    const int n = nk[0], k = nk[1];
    for (int m : {1024, 2048, 4096, 16384}) {
      __nv_bfloat16* x;
      int8_t *q, *q_ref, *w;
      float *sa, *sa_ref, *sb;
      __nv_bfloat16 *out, *out_ref;
      uint32_t* sync;
      const int64_t mk = int64_t(m) * k, mn = int64_t(m) * n;
      CHECK_CUDA(cudaMalloc(&x, mk * 2));
      CHECK_CUDA(cudaMalloc(&q, mk));
      CHECK_CUDA(cudaMalloc(&q_ref, mk));
      CHECK_CUDA(cudaMalloc(&w, int64_t(n) * k));
      CHECK_CUDA(cudaMalloc(&sa, m * 4));
      CHECK_CUDA(cudaMalloc(&sa_ref, m * 4));
      CHECK_CUDA(cudaMalloc(&sb, n * 4));
      CHECK_CUDA(cudaMalloc(&out, mn * 2));
      CHECK_CUDA(cudaMalloc(&out_ref, mn * 2));
      CHECK_CUDA(cudaMalloc(&sync, activation_quant_sync_words(m) * 4));
      CHECK_CUDA(cudaMemsetAsync(sync, 0, activation_quant_sync_words(m) * 4, stream));
      probe::fill_int8<<<1024, 256, 0, stream>>>(w, int64_t(n) * k, 5);
      probe::fill_x<<<1024, 256, 0, stream>>>(x, m, k, m + n);
      probe::fill_scale<<<64, 256, 0, stream>>>(sb, n, 2);
      Problem p;
      p.m = m, p.n = n, p.k = k;
      p.lda = k, p.b = w, p.ldb = k, p.ldo = n;
      p.scale_a_per_row = true, p.scale_b = sb, p.scale_b_per_col = true;
      p.sm_count = prop.multiProcessorCount, p.stream = stream, p.alloc_workspace = &alloc;
      p.launch_with_pdl = m <= 1024;  // as the dispatcher (kMaxPdlM)
      p.a_rows_readable = m;
      Problem p_ref = p;
      p_ref.a = q_ref, p_ref.scale_a = sa_ref, p_ref.out = out_ref;
      p.a = q, p.scale_a = sa, p.out = out;
      auto plain = [&](int raster) {
        Problem pr = p_ref;
        pr.raster_order = raster;
        return [pr](int) {
          const std::string e = Plain::run(pr);
          if (!e.empty()) { std::fprintf(stderr, "%s\n", e.c_str()); std::exit(3); }
        };
      };
      auto two_kernels = [&](int) {
        probe::reference_quant(x, q_ref, sa_ref, m, k, stream);
        plain(0)(0);
      };
      two_kernels(0);
      CHECK_CUDA(cudaStreamSynchronize(stream));
      // The fused kernel with the first `prologue_rows` rows quantized before its main loop:
      // checked against the two kernels' q, scales and output (its own poisoned first), then timed.
      std::string checks;
      auto fused_us = [&](int64_t prologue_rows, const char* name) {
        ActivationQuant quant;
        quant.x = x, quant.ldx = k, quant.q = q, quant.scale = sa, quant.sync = sync;
        quant.prologue_rows = prologue_rows;
        auto fused = [&](int) {
          const std::string e = sm90_128x128x128_c2x1_pingpong_quant_a(p, quant);
          if (!e.empty()) { std::fprintf(stderr, "%s\n", e.c_str()); std::exit(3); }
        };
        CHECK_CUDA(cudaMemsetAsync(q, 0x5a, mk, stream));
        CHECK_CUDA(cudaMemsetAsync(sa, 0xff, m * 4, stream));
        CHECK_CUDA(cudaMemsetAsync(out, 0xff, mn * 2, stream));
        fused(0);
        CHECK_CUDA(cudaStreamSynchronize(stream));
        CHECK_CUDA(cudaGetLastError());
        const bool exact = same_bytes(q, q_ref, mk) && same_bytes(sa, sa_ref, m) && same_bytes(out, out_ref, mn);
        std::vector<uint32_t> counters(activation_quant_sync_words(m));
        CHECK_CUDA(cudaMemcpy(counters.data(), sync, counters.size() * 4, cudaMemcpyDeviceToHost));
        const bool clean = std::all_of(counters.begin(), counters.end(), [](uint32_t c) { return c == 0; });
        checks += std::string(" ") + name + (exact ? " exact" : " MISMATCH") + (clean ? "" : " (counters left)");
        return 1e3f * probe::median_ms_per_call(fused, 10, 20, stream);
      };
      const float bg = fused_us(0, "bg");
      const int64_t wave_rows = QuantAMainloop::first_wave_rows(m, n, grid_ctas);
      const float wave = fused_us(-1, "wave");  // the launcher's choice: wave_rows
      const float all = fused_us(m, "all");
      const float noquant = 1e3f * probe::median_ms_per_call(plain(0), 10, 20, stream);
      const float noquant_n = 1e3f * probe::median_ms_per_call(plain(2), 10, 20, stream);
      const float two = 1e3f * probe::median_ms_per_call(two_kernels, 10, 20, stream);
      auto extra = [&](float t) { return 100.0f * (t / noquant - 1.0f); };
      std::printf("%-8s %6d %6d %6d %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f   %+.1f / %+.1f / %+.1f / %+.1f %%;%s "
                  "(wave: %lld rows)\n",
                  label, m, n, k, noquant, noquant_n, two, bg, wave, all, extra(two), extra(bg), extra(wave),
                  extra(all), checks.c_str(), static_cast<long long>(wave_rows));
      for (void* ptr : std::vector<void*>{x, q, q_ref, w, sa, sa_ref, sb, out, out_ref, sync}) CHECK_CUDA(cudaFree(ptr));
    }
  }
  return 0;
}
