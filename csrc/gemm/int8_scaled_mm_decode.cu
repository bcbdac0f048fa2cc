// INT8 scaled GEMM, sm90a: a hand-written kernel for decode (small M), no CUTLASS.
//
// A decode GEMM reads the whole weight (N x K bytes) to produce a few token rows, so its time
// should be the time to stream the weight from DRAM once; the CUTLASS configurations are far
// from that (H200, N = K = 4096, M <= 16: 12.4 us against 3.95 us at copy bandwidth). This
// kernel keeps as many weight bytes in flight as registers allow and does little else.
//
// Work split. The weight is the MMA's M side: one CTA owns 16 or 32 weight rows (output
// columns n; one or two m16 MMA tiles) and 16 tokens (output rows m, the MMA's n8 side, two n8
// tiles). Grid: ceil(N / rows) CTAs along x, the token tiles along y (looped when there are
// more than gridDim.y allows), so the kernel is correct for every M, if slow for large M. The
// 8 warps of a CTA split K: in each stage warp w takes a window of every row (256 bytes with
// 16 rows, 128 with 32), warps side by side, so a stage of the CTA reads 2 KB (1 KB) of
// contiguous k per row. Each lane holds 128 weight bytes in flight (4 chunks x 2 rows, or 2
// chunks x 4 rows, of 16 bytes: 32 KB a CTA, ~64 KB an SM at 2 CTAs) before it runs the MMAs
// of the stage; in the forms with 3 CTAs an SM, 96 bytes with 16 rows (3 chunks x 2 rows) and
// 64 with 32 (1 chunk x 4 rows: 512-byte stages a row).
// Rows past N (N a multiple of 16, not of 32) are neither read nor written. The int32 partial
// tiles of the 8 warps are summed in shared memory (exact), then the epilogue scales, adds the
// bias, rounds and stores. Which form a launch uses: launch_decode.
//
// The launch uses programmatic dependent launch (PDL): a decode GEMM lasts a few
// microseconds, of which the launch would otherwise be a large part. A CTA that starts while
// the previous kernel is still running loads its first stage of the weight (half of it at
// K = 4096) before it waits for that kernel, when the dispatcher allows it
// (Problem::b_ready_before_launch): the weight stream then overlaps the previous kernel's last
// CTAs and its completion (H200, M = 1 and 16 on Llama-3.1-8B's shapes: 4-9% faster).
//
// Loads go straight from global memory into MMA fragments: no shared-memory staging, no
// ldmatrix. A CTA reads its weight bytes once, so they bypass L1; the activations, read by
// every CTA, go through it.
//
// The k permutation. mma.sync.m16n8k32.row.col.s32.s8.s8.s32 (PTX ISA, "Matrix fragments for
// mma.m16n8k32" with .s8) gives lane (g = lane / 4, q = lane % 4):
//   A (16 x 32): a0 = row g,   k 4q..4q+3      a1 = row g+8, k 4q..4q+3
//                a2 = row g,   k 16+4q..+3     a3 = row g+8, k 16+4q..+3
//   B (32 x 8):  b0 = col g,   k 4q..4q+3      b1 = col g,   k 16+4q..+3
//   C (16 x 8):  c0 = (g, 2q)  c1 = (g, 2q+1)  c2 = (g+8, 2q)  c3 = (g+8, 2q+1)
// Lane q therefore owns the same 8 of the 32 k slots in A and in B. A dot product over k may
// be taken in any order, so we are free to say which real k each slot holds, provided A and B
// agree. We let lane q load the 16 contiguous bytes k0 + 16q .. k0 + 16q + 15 of a 64-byte
// chunk (one 128-bit load per row, 4 registers r0..r3 of 4 bytes), and feed them to two MMAs:
//   MMA 0: a0/a2 (and b0/b1) = r0, r1, i.e. slots 4q+j and 16+4q+j hold k0 + 16q + j and
//          k0 + 16q + 4 + j;
//   MMA 1: a0/a2 (and b0/b1) = r2, r3, i.e. the same slots hold k0 + 16q + 8 + j and
//          k0 + 16q + 12 + j   (j = 0..3),
// rows g and g+8 (a1/a3) and the token's bytes (b0/b1) the same way. Over the two MMAs every k
// of the chunk meets its partner exactly once. A quad's 4 lanes cover 64 contiguous bytes of a
// row, so every 32-byte sector a load instruction touches is used whole.
//
// K is a multiple of 16 and so is every 16-byte piece's start, so a piece is wholly inside or
// wholly outside K: the K tail is a per-piece predicate, zero-filled. Tokens m >= M are never
// read (zero fragments) and never written.
//
// Epilogue: bit-identical to the CUTLASS configurations (int8_scaled_mm_sm90.cuh). Read in
// CUTLASS 4.2's headers: the accumulator reaches the EVT as int32 and is converted by
// NumericConverter<float, int32_t, round_to_nearest>, a static_cast (cvt.rn.f32.s32);
// Sm90Compute<multiplies> computes scale_a * acc (mul.f32); Sm90Compute<
// homogeneous_multiply_add> computes multiply_add<float>, `a * b + c`, which nvcc contracts to
// one fma.rn.f32 (checked: PTX of those functors, and FFMA after FMUL in the SASS of
// int8_scaled_mm_sm90_small.cu.o); a null bias is the node's null_default, 0, and the FMA
// still runs (no is_zero shortcut applies to this tree), so -0 products become +0 there as
// here; NumericArrayConverter<bfloat16_t/half_t, float, round_to_nearest> converts pairs with
// cvt.rn.bf16x2.f32 / cvt.rn.f16x2.f32 (__float22half2_rn). We use the same instructions,
// with explicit round-to-nearest intrinsics so that no contraction can change them.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "core/pdl.cuh"
#include "gemm/int8_scaled_mm.h"

namespace qbench::int8_mm {
namespace {

constexpr int kWarps = 8;  // split K
constexpr int kThreads = kWarps * 32;
constexpr int kTokens = 16;  // tokens (output rows m) of a CTA: two n8 MMA tiles
constexpr int kPieceBytes = 16;                            // one 128-bit load
constexpr int kChunkK = 4 * kPieceBytes;                   // a quad's k per row and load: 64
// The CTA's weight rows (output columns n): kMTiles MMA tiles of 16 (the MMA's M), and the CTAs
// an SM holds (the kernel's __launch_bounds__). Each lane holds 2 * kMTiles rows and the weight
// bytes in flight that its registers allow: 128 at 2 CTAs an SM (at most 128 registers a
// thread), 96 at 3 (at most 80: the register file allows 85, granted in steps of 8), rounded
// down to whole chunks (a chunk is a 16-byte piece of each of the lane's rows): 64 with 32 rows
// at 3. The k a warp covers in a stage shrinks to match.
template <int kMTiles, int kCtasPerSm>
struct Tiling {
  static_assert(kCtasPerSm == 2 || kCtasPerSm == 3, "the register budgets of 2 and 3 CTAs an SM");
  static constexpr int kCtas = kCtasPerSm;
  static constexpr int kRows = 16 * kMTiles;
  static constexpr int kRegisterBytesPerLane = kCtasPerSm == 2 ? 128 : 96;
  static constexpr int kChunksPerStage = kRegisterBytesPerLane / (2 * kMTiles * kPieceBytes);
  static_assert(kChunksPerStage >= 1, "a lane holds a piece of each of its rows");
  static constexpr int kWarpStageK = kChunksPerStage * kChunkK;
  static constexpr int kCtaStageK = kWarps * kWarpStageK;
};
constexpr int kMaxGridY = 65535;

// A probe's hook (scripts/decode_timeline_probe.cu stamps each CTA's progress through it); empty
// in the extension.
#ifndef QB_DECODE_MARK
#define QB_DECODE_MARK(point)
#endif

// ceil(m / kTokens), without the overflow of (m + kTokens - 1) for m near 2^31.
__host__ __device__ constexpr int token_tile_count(int m) { return m / kTokens + (m % kTokens != 0); }

// 16 bytes of a weight row, or zeros when !valid. Read once: skip L1, and let L2 fetch the
// whole 256-byte block (the CTA reads all of it in this stage). No L2 eviction priority:
// evict-first (this kernel's first form) ran the same as none, with weights streamed from DRAM
// and with one weight kept in the L2; evict-last keeps a weight that fits the L2 there while
// other data passes through it, but costs 1-5% when the weight streams from DRAM, the case
// of a forward pass (H200, docs/measurements/h200-2026-12-04-l2-resident).
__device__ __forceinline__ void load_weight_piece(uint32_t (&r)[4], const int8_t* ptr, bool valid) {
  r[0] = r[1] = r[2] = r[3] = 0;
  if (valid) {
    asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "l"(ptr));
  }
}

// 16 bytes of a token row, or zeros when !valid. Every CTA reads the activations: keep them
// cached.
__device__ __forceinline__ void load_token_piece(uint32_t (&r)[4], const int8_t* ptr, bool valid) {
  r[0] = r[1] = r[2] = r[3] = 0;
  if (valid) {
    const uint4 v = __ldg(reinterpret_cast<const uint4*>(ptr));
    r[0] = v.x, r[1] = v.y, r[2] = v.z, r[3] = v.w;
  }
}

// acc (16 x 8) += A (16 x 32) * B (32 x 8), int8 in, int32 accumulate (exact).
__device__ __forceinline__ void mma_s8(int32_t (&acc)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                       uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+r"(acc[0]), "+r"(acc[1]), "+r"(acc[2]), "+r"(acc[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// The output dtype: its bias element as float (exact), and a pair of results rounded to
// nearest-even and packed (the low half is the lower column), as CUTLASS's converters do.
template <bool kOutFp16>
struct OutType;

template <>
struct OutType<false> {
  static __device__ __forceinline__ float to_float(uint16_t bits) {
    return __bfloat162float(__ushort_as_bfloat16(bits));
  }
  static __device__ __forceinline__ uint32_t round_pair(float lo, float hi) {
    uint32_t packed;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(packed) : "f"(hi), "f"(lo));
    return packed;
  }
};

template <>
struct OutType<true> {
  static __device__ __forceinline__ float to_float(uint16_t bits) { return __half2float(__ushort_as_half(bits)); }
  static __device__ __forceinline__ uint32_t round_pair(float lo, float hi) {
    uint32_t packed;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(packed) : "f"(hi), "f"(lo));
    return packed;
  }
};

// out = round(scale_b * (scale_a * float(acc)) + bias), as the CUTLASS epilogue computes it.
__device__ __forceinline__ float scale_and_bias(int32_t acc, float scale_a, float scale_b, float bias) {
  return __fmaf_rn(scale_b, __fmul_rn(scale_a, __int2float_rn(acc)), bias);
}

template <bool kOutFp16, class T>
__global__ void __launch_bounds__(kThreads, T::kCtas) int8_decode_gemm_kernel(const Problem p) {
  using Out = OutType<kOutFp16>;
  constexpr int kMTiles = T::kRows / 16;
  constexpr int kRows = T::kRows, kChunks = T::kChunksPerStage;
  // Each warp's int32 partial tile, [token m][weight row n].
  __shared__ int32_t partial[kWarps][kTokens][kRows];

  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const int group = lane / 4;  // MMA fragment row (weight) and column (token) of this lane
  const int quad = lane % 4;   // which 16-byte piece of each 64-byte chunk this lane loads

  const int n0 = blockIdx.x * kRows;
  // This lane's weight rows n0 + group + 8 h + 16 t (h = 0, 1 the fragment halves, t the MMA
  // tile); rows past N (the last CTA, N not a multiple of kRows) are never read.
  const int8_t* weight[kMTiles][2];
  bool has_row[kMTiles][2];
#pragma unroll
  for (int t = 0; t < kMTiles; ++t) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int n = n0 + 16 * t + 8 * h + group;
      has_row[t][h] = n < p.n;
      weight[t][h] = p.b + static_cast<int64_t>(has_row[t][h] ? n : n0) * p.ldb + quad * kPieceBytes;
    }
  }
  // This lane's weight pieces of the stage at hand.
  uint32_t w[kMTiles][2][kChunks][4];
  auto load_weight_stage = [&](int64_t k_stage) {
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int64_t k = k_stage + c * kChunkK;  // this chunk's start; the lane's piece is + 16q
      const bool in_k = k + quad * kPieceBytes < p.k;
#pragma unroll
      for (int t = 0; t < kMTiles; ++t)
#pragma unroll
        for (int h = 0; h < 2; ++h)
          load_weight_piece(w[t][h][c], weight[t][h] + k, in_k && has_row[t][h]);
    }
  };
  // Launched with programmatic dependent launch: everything above overlapped the previous
  // kernel in the stream. The weight may be read before that kernel has completed when the
  // caller says no kernel in flight writes it (Problem::b_ready_before_launch): its first stage
  // then streams while the previous kernel's last CTAs finish. Nothing else is read, and nothing
  // written, before pdl_wait().
  QB_DECODE_MARK(0);
  bool first_stage_loaded = p.b_ready_before_launch;
  if (first_stage_loaded) load_weight_stage(static_cast<int64_t>(warp) * T::kWarpStageK);
  pdl_wait();
  QB_DECODE_MARK(1);

  const int token_tiles = token_tile_count(p.m);
  for (int token_tile = blockIdx.y; token_tile < token_tiles; token_tile += gridDim.y) {
    const int m0 = token_tile * kTokens;
    const int tokens = min(kTokens, p.m - m0);
    const bool has_token_lo = group < tokens;
    const bool has_token_hi = group + 8 < tokens;
    const bool two_token_tiles = tokens > 8;  // warp-uniform
    // Rows past M are never dereferenced; point them at row m0 to keep the address valid.
    const int8_t* tokens_base = p.a + static_cast<int64_t>(m0) * p.lda + quad * kPieceBytes;
    const int8_t* token_lo = tokens_base + (has_token_lo ? group : 0) * p.lda;
    const int8_t* token_hi = tokens_base + (has_token_hi ? group + 8 : 0) * p.lda;

    int32_t acc[kMTiles][2][4] = {};  // [weight m16 tile][token n8 tile][C fragment]
    for (int64_t k_stage = static_cast<int64_t>(warp) * T::kWarpStageK; k_stage < p.k; k_stage += T::kCtaStageK) {
      if (!first_stage_loaded) load_weight_stage(k_stage);
      first_stage_loaded = false;
      uint32_t x_lo[kChunks][4], x_hi[kChunks][4];
#pragma unroll
      for (int c = 0; c < kChunks; ++c) {
        const int64_t k = k_stage + c * kChunkK;
        const bool in_k = k + quad * kPieceBytes < p.k;
        load_token_piece(x_lo[c], token_lo + k, in_k && has_token_lo);
        load_token_piece(x_hi[c], token_hi + k, in_k && has_token_hi);
      }
#pragma unroll
      for (int c = 0; c < kChunks; ++c) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int r = 2 * half;  // registers r, r+1 feed slots 4q+j, 16+4q+j (see the header)
#pragma unroll
          for (int t = 0; t < kMTiles; ++t) {
            const uint32_t(&lo)[4] = w[t][0][c];
            const uint32_t(&hi)[4] = w[t][1][c];
            mma_s8(acc[t][0], lo[r], hi[r], lo[r + 1], hi[r + 1], x_lo[c][r], x_lo[c][r + 1]);
            if (two_token_tiles) mma_s8(acc[t][1], lo[r], hi[r], lo[r + 1], hi[r + 1], x_hi[c][r], x_hi[c][r + 1]);
          }
        }
      }
    }
    QB_DECODE_MARK(2);

#pragma unroll
    for (int t = 0; t < kMTiles; ++t) {
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        const int m = 8 * u + 2 * quad;
        const int n = 16 * t + group;
        partial[warp][m][n] = acc[t][u][0];
        partial[warp][m + 1][n] = acc[t][u][1];
        partial[warp][m][n + 8] = acc[t][u][2];
        partial[warp][m + 1][n + 8] = acc[t][u][3];
      }
    }
    __syncthreads();
    QB_DECODE_MARK(3);

    // The tile's kTokens * kRows / 2 column pairs, one a thread (at most one each with 16 or 32
    // rows). Written as a loop rather than `if (threadIdx.x < pairs)`: the same work, but ptxas
    // then gives the kernel 122 registers instead of 126 and a different, faster schedule (H200,
    // M = 16: 1-3% faster at K = 4096, docs/measurements/h200-2026-12-03-decode-splitk).
    for (int idx = threadIdx.x; idx < kTokens * kRows / 2; idx += kThreads) {
      const int m_local = idx / (kRows / 2);
      const int n_local = 2 * (idx % (kRows / 2));
      const int m = m0 + m_local;
      const int n = n0 + n_local;  // N is even, so n + 1 < N with n
      if (m < p.m && n < p.n) {
        int32_t sum0 = 0, sum1 = 0;
#pragma unroll
        for (int w8 = 0; w8 < kWarps; ++w8) {
          sum0 += partial[w8][m_local][n_local];
          sum1 += partial[w8][m_local][n_local + 1];
        }
        const float scale_a = p.scale_a[p.scale_a_per_row ? m : 0];
        const float scale_b0 = p.scale_b[p.scale_b_per_col ? n : 0];
        const float scale_b1 = p.scale_b[p.scale_b_per_col ? n + 1 : 0];
        float bias0 = 0.0f, bias1 = 0.0f;
        if (p.bias != nullptr) {
          const auto* bias = static_cast<const uint16_t*>(p.bias);
          bias0 = Out::to_float(bias[n]);
          bias1 = Out::to_float(bias[n + 1]);
        }
        const uint32_t packed = Out::round_pair(scale_and_bias(sum0, scale_a, scale_b0, bias0),
                                                scale_and_bias(sum1, scale_a, scale_b1, bias1));
        auto* out = static_cast<uint16_t*>(p.out) + static_cast<int64_t>(m) * p.ldo + n;
        *reinterpret_cast<uint32_t*>(out) = packed;
      }
    }
    QB_DECODE_MARK(4);
    __syncthreads();  // the next token tile reuses `partial`
  }
}

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

template <class T>
cudaError_t launch_form(const Problem& p, int token_tiles) {
  const dim3 grid((p.n + T::kRows - 1) / T::kRows, token_tiles);
  const auto kernel = p.out_fp16 ? int8_decode_gemm_kernel<true, T> : int8_decode_gemm_kernel<false, T>;
  return launch_with_pdl(kernel, grid, dim3(kThreads), p.stream, p);
}

// Whether all of a form's CTAs fit in the GPU's slots at once.
template <class T>
bool one_round(const Problem& p, int token_tiles) {
  return int64_t((p.n + T::kRows - 1) / T::kRows) * token_tiles <= int64_t(T::kCtas) * p.sm_count;
}

// The forms: rows a CTA x CTAs an SM.
using Rows16x2 = Tiling<1, 2>;
using Rows16x3 = Tiling<1, 3>;
using Rows32x2 = Tiling<2, 2>;
using Rows32x3 = Tiling<2, 3>;

// A launch takes the first form of Forms whose CTAs fit in one round, and 16 rows at 2 CTAs an
// SM where none does (its more CTAs keep more bytes in flight than 32 rows would).
template <class T, class... Forms>
cudaError_t launch_first_in_one_round(const Problem& p, int token_tiles) {
  if (one_round<T>(p, token_tiles)) return launch_form<T>(p, token_tiles);
  if constexpr (sizeof...(Forms) > 0) {
    return launch_first_in_one_round<Forms...>(p, token_tiles);
  } else {
    return launch_form<Rows16x2>(p, token_tiles);
  }
}

// The order of preference, H200, in turns:
//  - 16 rows at 3 CTAs an SM where 16 rows at 2 need a second, partial round of slots: 6-15%
//    faster at the 6 shapes timed there (Llama-3.1-8B's N = 6144 at K = 4096, M = 1 / 16:
//    7.41 / 8.46 us against 8.06 / 8.83 for 32 rows; N = 5120, K = 5120: 8.52 / 9.25 against
//    9.54 / 10.43); forced elsewhere it lost, e.g. N = 4096: 6.18 / 6.75 against 5.54 / 6.29,
//    N = 28672: 30.2 / 35.3 against 29.3 / 32.0 (docs/measurements/h200-2026-12-04-decode-three-ctas).
//  - 32 rows where even that needs two rounds and 32-row CTAs fit in one (N = 8192 at
//    K = 8192): docs/measurements/h200-2026-12-02-decode-rows, M = 16, N = 6144, K = 4096:
//    16 rows 10.1-10.6 us, 32 rows 8.9-9.4; N = 8192, K = 8192: 21.0 -> 18.4; but N = 4096:
//    6.4 -> 7.1, N = 10240 (3 rounds -> 2): 26.7 -> 27.6, N = 28672: 32.9 -> 34.0.
//  - 32 rows at 3 CTAs an SM where 32 rows at 2 need two rounds, up to K = 4096: at the three
//    such shapes of the benchmark's models, M = 1 / 16, N = 9472, K = 3584: 11.0 / 11.7-12.1 us
//    against 11.6 / 13.3 for 16 rows at 2 in rounds; N = 11008, K = 4096: 12.9-13.0 /
//    13.7-14.0 against 12.8 / 14.8-15.0; N = 12288, K = 4096: 13.6 / 14.5-14.6 against 13.8 /
//    15.5-15.7. Its 64 bytes a lane in flight lose on longer rows at few tokens: N = 10240,
//    K = 8192: 23.9-24.0 / 24.5 against 23.2-23.3 / 26.3-26.4; N = 9216, K = 16384: 44.9-45.0 /
//    45.8 against 41.1-41.2 / 45.4 (docs/measurements/h200-2026-12-04-decode-32-rows-3-ctas).
constexpr int64_t kMaxKRows32x3 = 4096;

cudaError_t launch_decode(const Problem& p, int token_tiles) {
  if (p.k <= kMaxKRows32x3) {
    return launch_first_in_one_round<Rows16x2, Rows16x3, Rows32x2, Rows32x3>(p, token_tiles);
  }
  return launch_first_in_one_round<Rows16x2, Rows16x3, Rows32x2>(p, token_tiles);
}

}  // namespace

std::string sm90_decode_mma_16x16_ksplit8(const Problem& p) {
  // The dispatcher's checks already guarantee these; the kernel's loads depend on them.
  if (p.n % 16 != 0 || p.k % kPieceBytes != 0) return "the decode kernel needs N and K multiples of 16";
  if ((p.m > 1 && p.lda % kPieceBytes != 0) || p.ldb % kPieceBytes != 0 || p.ldo % 2 != 0 || !aligned16(p.a) ||
      !aligned16(p.b) || !aligned16(p.out)) {
    return "the decode kernel needs 16-byte aligned a and b rows and out";
  }
  const int token_tiles = std::min(token_tile_count(p.m), kMaxGridY);
  const cudaError_t err = launch_decode(p, token_tiles);
  if (err != cudaSuccess) return std::string("decode kernel launch failed: ") + cudaGetErrorString(err);
  return {};
}

}  // namespace qbench::int8_mm
