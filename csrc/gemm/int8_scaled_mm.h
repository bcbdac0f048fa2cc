#pragma once
// INT8 scaled GEMM: the plain interface between the torch-facing dispatcher
// (int8_scaled_mm_dispatch.cpp) and the kernels (int8_scaled_mm_sm90_*.cu on CUTLASS,
// int8_scaled_mm_decode.cu hand-written).
//
// Deliberately free of torch and CUTLASS headers: the kernel translation units include only
// CUTLASS (they are the slow ones to compile), the dispatcher only torch.
//
//   out (M, N) = (scale_a * a) @ (scale_b * b) + bias
//   a int8 (M, K) row-major, b int8 (K, N) column-major, int32 accumulation; then in fp32
//   acc * scale_a[m] * scale_b[n] + bias[n], rounded once to bf16 / fp16.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace qbench::int8_mm {

// Gives the kernel a device workspace of `bytes` bytes (stream-K partial sums), allocated by
// the dispatcher from torch's caching allocator on the current stream. Returns nullptr on
// failure (the allocator has raised by then, so this never happens in practice).
using WorkspaceAllocFn = void* (*)(void* ctx, size_t bytes);

struct Problem {
  int m = 0, n = 0, k = 0;  // all > 0 when a launcher is called
  const int8_t* a = nullptr;  // (M, K): element (m, k) at a[m * lda + k]
  int64_t lda = 0;
  // Rows of a's memory that may be read (>= m): a view of a larger buffer, as scaled_int8_quant
  // returns, holds rows past M; what the kernels compute from them is never stored.
  int64_t a_rows_readable = 0;
  const int8_t* b = nullptr;  // (K, N) column-major: element (k, n) at b[n * ldb + k]
  int64_t ldb = 0;
  void* out = nullptr;  // (M, N) row-major: element (m, n) at out[m * ldo + n]
  int64_t ldo = 0;
  bool out_fp16 = false;  // false: bfloat16, true: float16
  const float* scale_a = nullptr;  // M values (per token) or 1 (per tensor)
  bool scale_a_per_row = false;
  const float* scale_b = nullptr;  // N values (per channel) or 1 (per tensor)
  bool scale_b_per_col = false;
  const void* bias = nullptr;  // N values in out's dtype, or nullptr (no bias)
  // Tile order of the persistent schedulers (CUTLASS's max_swizzle_size and raster order:
  // 0 heuristic, 1 along M, 2 along N): which output tiles run at the same time, and so how
  // much of A and B they share in L2.
  int max_swizzle = 1;
  int raster_order = 0;
  // b holds its final values before this launch: no kernel still running, or launched before
  // this one in the stream with programmatic dependent launch, writes it. The decode kernel may
  // then read b before the PDL wait (the dispatcher decides, see int8_scaled_mm_dispatch.cpp).
  bool b_ready_before_launch = false;
  // Launch the CUTLASS configurations that support it with programmatic dependent launch (the
  // decode kernel always uses it; the stream-K configurations never). The dispatcher decides
  // by M (kMaxPdlM in int8_scaled_mm_dispatch.cpp).
  bool launch_with_pdl = true;
  int device = 0;
  int sm_count = 0;
  cudaStream_t stream = nullptr;
  WorkspaceAllocFn alloc_workspace = nullptr;
  void* alloc_ctx = nullptr;
};

// Every launcher returns an empty string on success, else a description of what failed.
using Launcher = std::string (*)(const Problem&);

// One launcher per kernel configuration; each picks its bf16 or fp16 instantiation.
// CUTLASS names: sm90_[swap_ (computes out^T)]<tile MxNxK>_c<cluster MxN>_<coop|pingpong|ws (the
// plain warp-specialized kernel)>[_sk (stream-K)]; the hand-written one:
// sm90_decode_mma_<weight rows x tokens of its smaller CTA tile>_ksplit<warps>.
// Defined in int8_scaled_mm_sm90_large.cu:
std::string sm90_128x256x128_c2x1_coop(const Problem& p);
std::string sm90_256x128x128_c2x1_coop(const Problem& p);
// Defined in int8_scaled_mm_sm90_mid.cu:
std::string sm90_128x128x128_c2x1_pingpong(const Problem& p);
std::string sm90_64x128x128_c2x1_pingpong(const Problem& p);
// Defined in int8_scaled_mm_sm90_small.cu, the stream-K configurations (swap: the kernel
// computes out^T = b^T a^T, so the small M is the N side of the tile):
std::string sm90_swap_128x16x128_c1x1_coop_sk(const Problem& p);
std::string sm90_swap_128x32x128_c1x1_coop_sk(const Problem& p);
std::string sm90_swap_128x64x128_c1x1_coop_sk(const Problem& p);
std::string sm90_128x128x128_c1x1_coop_sk(const Problem& p);
// Defined in int8_scaled_mm_sm90_narrow.cu (64-row M tiles, for 16 < M <= 128):
std::string sm90_64x64x256_c1x1_ws(const Problem& p);
std::string sm90_64x48x256_c1x1_ws(const Problem& p);
std::string sm90_64x32x256_c1x1_ws(const Problem& p);
// Defined in int8_scaled_mm_decode.cu (no CUTLASS): mma.sync with the weight as the MMA's M,
// 16 or 32 weight rows x 16 tokens a CTA, K split over 8 warps; for decode (small M), correct for
// any M.
std::string sm90_decode_mma_16x16_ksplit8(const Problem& p);

}  // namespace qbench::int8_mm
