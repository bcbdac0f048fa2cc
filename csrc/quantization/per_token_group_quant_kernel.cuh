#pragma once
// Per-token-group quantization of activations to FP8 (e4m3) or INT8.
//
// Memory-bound, and on Hopper close to instruction-bound: each thread owns 16 or 32
// consecutive elements of one group (16-byte loads), the G / 16 or G / 32 threads of a group
// reduce |x| with shuffles, and lane 0 of the group writes its scale. One kernel per
// (input dtype, output dtype, elements per thread); group size, scale layout, UE8M0 and the
// vector/scalar access path are run-time arguments, so the build stays small.
//
// Latency of small inputs: the kernel is launched with programmatic dependent launch (PDL),
// so its launch overlaps the end of the previous kernel in the stream; tiny inputs use small
// blocks, so that their few warps issue on several SMs.
//
// Bit-exact with qbench_ext.reference:
// - amax is the max of |x| compared as IEEE bit patterns (monotone for non-negative floats,
//   and a NaN outranks every number, so NaN propagates);
// - s = amax / qmax and every x / s are correctly rounded fp32 divisions. From r = RN(1 / s),
//   a faithful quotient q is corrected once by FMA (Markstein's theorem: from a faithful
//   quotient and a reciprocal within half an ulp, one correction is correctly rounded;
//   markstein_step states the range where that holds). fp32 x gets its faithful q from
//   RN(x * r) and a first correction (5 FP instructions an element); 16-bit x, which has few
//   significant bits, from a reciprocal split in two, x * hi exact plus x * lo (4: see
//   QuotientOf16Bit). Either is far cheaper than a full division, which measured 10-20% of
//   the kernel's time on an H200. On inputs that stay in L2 between calls (1024 rows) the
//   kernel is issue-bound and the division is most of its instructions: going from 5 to 4
//   took 1024x6144 bf16 from 4.90-5.23 us to 4.57-4.82 (H200, the non-UE8M0 variants). With
//   UE8M0, s is a power of two, r is exact and x * r already is the correctly rounded
//   quotient. Groups holding a NaN or Inf take IEEE division, out of line.
//
// Torch-free, so that scripts/quant_latency_probe.cu times this very kernel without torch;
// the op (argument checks, tensors, the PDL-writes record) is per_token_group_quant.cu.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/pdl.cuh"

namespace qbench::group_quant {

// Elements a thread owns: 16 (two 16-byte loads of a 16-bit input), or 32 for large tensors,
// which halves the per-thread overhead (index math, shuffles, the scale and its reciprocal)
// per element once there are enough threads to fill the GPU anyway.
constexpr int kMinElemsPerThread = 16;
constexpr int kMaxElemsPerThread = 32;
constexpr int64_t kMinElemsForWideThreads = int64_t(1) << 22;
constexpr int kMaxThreadsPerBlock = 256;
// Tiny inputs (a few decode tokens) run in blocks of 64 threads: spread over more SMs, their
// instructions issue in parallel instead of queueing on one SM's schedulers.
constexpr int kSmallBlockThreads = 64;
constexpr uint64_t kMaxItemsForSmallBlocks = 16384;

// Threads a block, for a launch of num_items items.
constexpr int block_threads(uint64_t num_items) {
  return num_items <= kMaxItemsForSmallBlocks ? kSmallBlockThreads : kMaxThreadsPerBlock;
}
// Column-major scales: groups are numbered down bands of this many rows, so that a warp's
// lane-0 threads write consecutive floats of a scale column (32-byte sectors, not 4 bytes).
constexpr uint32_t kBandRows = 8;

struct GroupQuantParams {
  const void* x;
  void* q;
  float* s;
  int64_t x_row_stride;  // elements
  int64_t q_row_stride;  // elements
  int64_t s_row_stride;  // elements
  int64_t s_col_stride;  // elements
  uint32_t num_groups;   // rows * groups_per_row, < 2^31
  uint64_t num_items;    // num_groups << lanes_log2: one item is one thread's N elements
  // Group numbering. Row-major scales: along rows (g = row * groups_per_row + col_group), so
  // that consecutive threads stream through x and q. Column-major scales: the first
  // banded_groups groups (the rows of whole bands) go down each band's kBandRows rows first,
  // then along it; the remaining rows (banded_rows onwards) along rows. Divisions are
  // multiply-highs by precomputed magic numbers.
  uint32_t groups_per_row;
  uint64_t row_magic;
  int row_shift;
  uint32_t banded_groups;  // 0 for row-major scales
  uint32_t banded_rows;
  uint32_t band_groups;  // kBandRows * groups_per_row
  uint64_t band_magic;
  int band_shift;
  int group_size;
  int lanes_log2;  // log2(group_size / elements per thread)
  float eps;
  float qmax;
  float inv_qmax;  // RN(1 / qmax)
  bool use_ue8m0;
  bool vector_loads;   // x and its row stride are 16-byte aligned
  bool vector_stores;  // q and its row stride are 16-byte aligned
};

// d = ceil(log2(divisor)); magic = ceil(2^(32 + d) / divisor). For n < 2^31,
// (n * magic) >> (32 + d) == n / divisor, and n * magic < 2^64.
inline void make_magic(uint32_t divisor, uint64_t& magic, int& shift) {
  shift = 0;
  while ((uint64_t(1) << shift) < divisor) ++shift;
  magic = ((uint64_t(1) << (32 + shift)) + divisor - 1) / divisor;
}

// One FMA correction of a quotient q of n / d, given r = RN(1 / d) (see the file comment):
// correctly rounded when q is faithful, for finite n and d >= 2^-76 (eps >= 1e-20
// guarantees it), so that the remainder d * q - n is exact (representable, if subnormal then
// still a multiple of 2^-149) wherever |n / d| >= 2^-11; smaller quotients round to zero in
// both 8-bit formats whatever their last bits. The remainder is taken as d * q - n and
// subtracted, not n - d * q added: that keeps the sign of a zero quotient (-0 stays -0,
// which FP8 can represent).
__device__ __forceinline__ float markstein_step(float n, float d, float r, float q) {
  return __fmaf_rn(-__fmaf_rn(d, q, -n), r, q);
}

// Correctly rounded n / d, for any finite n in markstein_step's range: RN(n * r) is within
// two ulps, a first correction makes it faithful, the second rounds it correctly.
__device__ __forceinline__ float div_rn(float n, float d, float r) {
  return markstein_step(n, d, r, markstein_step(n, d, r, n * r));
}

// Correctly rounded n / d for n with at most kSignificantBits significant bits (a widened
// bf16 or fp16 value), in markstein_step's range and with its signed zeros.
//
// hi is r cut to 24 - kSignificantBits significant bits and lowered by one unit of its last
// one, so that n * hi is exact and 0 < hi < 1 / d (r is within half an ulp of 1 / d, far
// less than that unit); lo = RN(RN(1 - d * hi) * r) > 0 is the rest of 1 / d, to within a
// few 2^-24 of itself, and 1 - d * hi < 2^(kSignificantBits - 22): hi + lo is 1 / d to
// within 2^-32. So q = RN(n * lo + n * hi) (one rounding: n * hi is exact) is n / d rounded
// from within 2^-32 of it, which is faithful. lo > 0 keeps the sign of a zero n (-0 * hi +
// -0 * lo is -0). One Markstein step then rounds correctly.
template <int kSignificantBits>
struct QuotientOf16Bit {
  static constexpr uint32_t kLastUnit = 1u << kSignificantBits;  // in hi's bits
  float d, r, hi, lo;

  __device__ __forceinline__ QuotientOf16Bit(float divisor, float reciprocal) : d(divisor), r(reciprocal) {
    hi = __uint_as_float((__float_as_uint(r) & ~(kLastUnit - 1u)) - kLastUnit);
    lo = __fmul_rn(__fmaf_rn(-d, hi, 1.0f), r);
  }
  __device__ __forceinline__ float operator()(float n) const {
    return markstein_step(n, d, r, __fmaf_rn(n, lo, __fmul_rn(n, hi)));
  }
};

struct QuotientOf32Bit {
  float d, r;
  __device__ __forceinline__ QuotientOf32Bit(float divisor, float reciprocal) : d(divisor), r(reciprocal) {}
  __device__ __forceinline__ float operator()(float n) const { return div_rn(n, d, r); }
};

// Smallest power of two >= s, from the bits (exact; NaN and Inf pass through).
__device__ __forceinline__ float ceil_pow2(float s) {
  uint32_t b = __float_as_uint(s);
  const uint32_t exponent = b & 0x7f800000u;
  if ((b & 0x007fffffu) != 0 && exponent != 0x7f800000u) b = exponent + 0x00800000u;
  return __uint_as_float(b);
}

// The raw bits of the N inputs a thread owns.
template <typename InT, int N>
struct RawChunk {
  static constexpr int kWords = N * int(sizeof(InT)) / 4;
  uint32_t w[kWords];

  __device__ __forceinline__ void load(const InT* src, bool vector) {
    if (vector) {
#pragma unroll
      for (int i = 0; i < kWords / 4; ++i) {
        const uint4 r = __ldg(reinterpret_cast<const uint4*>(src) + i);
        w[4 * i] = r.x, w[4 * i + 1] = r.y, w[4 * i + 2] = r.z, w[4 * i + 3] = r.w;
      }
    } else if constexpr (sizeof(InT) == 4) {
#pragma unroll
      for (int i = 0; i < N; ++i) w[i] = __ldg(reinterpret_cast<const uint32_t*>(src) + i);
    } else {
      const uint16_t* h = reinterpret_cast<const uint16_t*>(src);
#pragma unroll
      for (int i = 0; i < N / 2; ++i) w[i] = uint32_t(__ldg(h + 2 * i)) | (uint32_t(__ldg(h + 2 * i + 1)) << 16);
    }
  }
};

// Widens a chunk to fp32 and returns max |x| as fp32 bits.
template <typename T>
struct Input;

template <>
struct Input<float> {
  using Quotient = QuotientOf32Bit;
  template <int N>
  static __device__ __forceinline__ uint32_t unpack(const RawChunk<float, N>& raw, float (&v)[N]) {
    uint32_t amax = 0;
#pragma unroll
    for (int i = 0; i < N; ++i) {
      v[i] = __uint_as_float(raw.w[i]);
      amax = max(amax, raw.w[i] & 0x7fffffffu);
    }
    return amax;
  }
};

// 16-bit inputs: |x| is reduced two elements at a time on the raw bits (sign cleared, the
// halves compared as unsigned 16-bit integers), then widened to fp32 bits once.
template <typename InT, typename Bits>
struct Input16 {
  template <int N>
  static __device__ __forceinline__ uint32_t unpack(const RawChunk<InT, N>& raw, float (&v)[N]) {
    uint32_t amax2 = 0;
#pragma unroll
    for (int i = 0; i < N / 2; ++i) {
      amax2 = __vmaxu2(amax2, raw.w[i] & 0x7fff7fffu);
      v[2 * i] = Bits::to_float(raw.w[i] & 0xffffu);
      v[2 * i + 1] = Bits::to_float(raw.w[i] >> 16);
    }
    return __float_as_uint(Bits::to_float(max(amax2 & 0xffffu, amax2 >> 16)));
  }
};

struct Bf16Bits {
  static __device__ __forceinline__ float to_float(uint32_t bits) { return __uint_as_float(bits << 16); }
};

struct Fp16Bits {
  static __device__ __forceinline__ float to_float(uint32_t bits) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(bits)));
  }
};

template <>
struct Input<__nv_bfloat16> : Input16<__nv_bfloat16, Bf16Bits> {
  using Quotient = QuotientOf16Bit<8>;
};

template <>
struct Input<__half> : Input16<__half, Fp16Bits> {
  using Quotient = QuotientOf16Bit<11>;
};

struct Fp8Out {
  // satfinite: +-Inf and out-of-range values saturate to +-448; NaN stays NaN.
  static __device__ __forceinline__ uint32_t pack4_finite(const float* v) { return pack4(v); }
  static __device__ __forceinline__ uint32_t pack4(const float* v) {
    const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(v[0], v[1]), __NV_SATFINITE, __NV_E4M3);
    const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(v[2], v[3]), __NV_SATFINITE, __NV_E4M3);
    return lo | (hi << 16);
  }
};

struct Int8Out {
  // Round half to even (float-to-int conversion saturates and maps NaN to 0), then pack with
  // saturation to [-128, 127].
  static __device__ __forceinline__ uint32_t pack4(const float* v) {
    const int a = __float2int_rn(v[0]), b = __float2int_rn(v[1]), c = __float2int_rn(v[2]), d = __float2int_rn(v[3]);
    uint32_t hi, packed;
    asm("cvt.pack.sat.s8.s32.b32 %0, %1, %2, 0;" : "=r"(hi) : "r"(d), "r"(c));
    asm("cvt.pack.sat.s8.s32.b32 %0, %1, %2, %3;" : "=r"(packed) : "r"(b), "r"(a), "r"(hi));
    return packed;
  }
  // Finite groups: |v| <= 127 * (1 + 2^-23), so adding 1.5 * 2^23 rounds v half-to-even to an
  // integer held in the low mantissa bits, whose low byte is v's two's-complement byte. One
  // full-rate add an element instead of a quarter-rate float-to-int conversion.
  static __device__ __forceinline__ uint32_t pack4_finite(const float* v) {
    constexpr float kRoundMagic = 12582912.0f;
    const uint32_t a = __float_as_uint(v[0] + kRoundMagic), b = __float_as_uint(v[1] + kRoundMagic);
    const uint32_t c = __float_as_uint(v[2] + kRoundMagic), d = __float_as_uint(v[3] + kRoundMagic);
    return __byte_perm(__byte_perm(a, b, 0x0040), __byte_perm(c, d, 0x0040), 0x5410);
  }
};

template <int N>
__device__ __forceinline__ void store_chunk(uint8_t* q, const uint32_t (&packed)[N / 4], bool vector) {
  if (vector) {
#pragma unroll
    for (int i = 0; i < N / 16; ++i)
      reinterpret_cast<uint4*>(q)[i] = make_uint4(packed[4 * i], packed[4 * i + 1], packed[4 * i + 2], packed[4 * i + 3]);
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) q[i] = static_cast<uint8_t>(packed[i / 4] >> (8 * (i % 4)));
  }
}

// A group holding a NaN or Inf: rare, so it takes the plain IEEE division (which also gives
// the reference's NaN bits) out of line, keeping the common path's code short.
template <typename InT, typename Out, int N>
__device__ __noinline__ void quantize_non_finite(const RawChunk<InT, N> raw, float amax, float qmax, bool use_ue8m0,
                                                 uint8_t* q, bool vector_stores, float* s) {
  float v[N];
  Input<InT>::unpack(raw, v);
  float scale = __fdiv_rn(amax, qmax);
  if (use_ue8m0) scale = ceil_pow2(scale);
#pragma unroll
  for (int i = 0; i < N; ++i) v[i] = __fdiv_rn(v[i], scale);
  uint32_t packed[N / 4];
#pragma unroll
  for (int i = 0; i < N / 4; ++i) packed[i] = Out::pack4(v + 4 * i);
  store_chunk<N>(q, packed, vector_stores);
  if (s != nullptr) *s = scale;
}

struct GroupPos {
  uint32_t row;
  uint32_t col_group;
};

// Group g's row and column group; see GroupQuantParams for the numbering.
__device__ __forceinline__ GroupPos locate(const GroupQuantParams& p, uint32_t g) {
  if (g < p.banded_groups) {
    const uint32_t band = static_cast<uint32_t>((uint64_t(g) * p.band_magic) >> (32 + p.band_shift));
    const uint32_t i = g - band * p.band_groups;
    return {band * kBandRows + i % kBandRows, i / kBandRows};
  }
  g -= p.banded_groups;
  const uint32_t r = static_cast<uint32_t>((uint64_t(g) * p.row_magic) >> (32 + p.row_shift));
  return {p.banded_rows + r, g - r * p.groups_per_row};
}

// Where a lane's N elements start, in elements, in a matrix (x or q) with this row stride.
template <int N>
__device__ __forceinline__ int64_t chunk_offset(const GroupQuantParams& p, GroupPos pos, uint32_t lane,
                                                int64_t row_stride) {
  return int64_t(pos.row) * row_stride + int64_t(pos.col_group) * p.group_size + int64_t(lane) * N;
}

template <typename InT, typename Out, int N>
__device__ __forceinline__ void quantize_chunk(const GroupQuantParams& p, const RawChunk<InT, N>& raw, uint8_t* q,
                                               float* s, bool active) {
  float v[N];
  uint32_t amax_bits = Input<InT>::unpack(raw, v);
  const uint32_t lanes = 1u << p.lanes_log2;
  // Groups never straddle a warp (lanes divides 32), so each xor partner is in the group. Every
  // lane of the warp takes part (see the kernel), so one constant mask serves all groups; a
  // mask per group split the warp into its groups, which then took turns: 500 cycles of a
  // 2000-cycle kernel at G = 64 on an H200.
#pragma unroll
  for (uint32_t offset = 16; offset > 0; offset >>= 1)
    if (offset < lanes) amax_bits = max(amax_bits, __shfl_xor_sync(0xffffffffu, amax_bits, offset));

  float amax = __uint_as_float(amax_bits);
  amax = amax < p.eps ? p.eps : amax;  // keeps NaN
  if (amax_bits >= 0x7f800000u) {
    quantize_non_finite<InT, Out, N>(raw, amax, p.qmax, p.use_ue8m0, q, p.vector_stores, s);
    return;
  }
  float scale = div_rn(amax, p.qmax, p.inv_qmax);
  if (p.use_ue8m0) scale = ceil_pow2(scale);
  const float inv = __frcp_rn(scale);
  if (p.use_ue8m0) {
    // Exact reciprocal of a power of two: the product is the correctly rounded quotient.
#pragma unroll
    for (int i = 0; i < N; ++i) v[i] *= inv;
  } else {
    const typename Input<InT>::Quotient quotient(scale, inv);
#pragma unroll
    for (int i = 0; i < N; ++i) v[i] = quotient(v[i]);
  }
  uint32_t packed[N / 4];
#pragma unroll
  for (int i = 0; i < N / 4; ++i) packed[i] = Out::pack4_finite(v + 4 * i);
  if (active) store_chunk<N>(q, packed, p.vector_stores);
  if (s != nullptr) *s = scale;
}

// One thread per item (a thread's chunk of N elements; items are numbered group by group).
// Launched with PDL (core/pdl.cuh): the launch and the index math overlap the tail of the
// kernel before it in the stream; pdl_wait() holds every memory access until that kernel has
// completed.
template <typename InT, typename Out, int N>
__global__ void __launch_bounds__(kMaxThreadsPerBlock)
    per_token_group_quant_kernel(const GroupQuantParams p) {
  const uint64_t item = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  // Lanes past the last item stay, with zeros, so that every lane of a warp shuffles (they
  // form whole groups of their own: items hold whole groups, lanes divides 32).
  if (item - (threadIdx.x & 31u) >= p.num_items) return;
  const bool active = item < p.num_items;
  const uint32_t lane = static_cast<uint32_t>(item) & ((1u << p.lanes_log2) - 1u);
  const GroupPos pos = locate(p, static_cast<uint32_t>(item >> p.lanes_log2));
  const InT* x = static_cast<const InT*>(p.x) + chunk_offset<N>(p, pos, lane, p.x_row_stride);
  uint8_t* q = static_cast<uint8_t*>(p.q) + chunk_offset<N>(p, pos, lane, p.q_row_stride);
  // Lane 0 of each group writes the scale.
  float* s = lane == 0 && active ? p.s + int64_t(pos.row) * p.s_row_stride + int64_t(pos.col_group) * p.s_col_stride
                                 : nullptr;
  pdl_wait();
  RawChunk<InT, N> raw{};
  if (active) raw.load(x, p.vector_loads);
  quantize_chunk<InT, Out, N>(p, raw, q, s, active);
}

inline bool aligned(const void* ptr, int64_t row_stride_bytes, int alignment) {
  return reinterpret_cast<uintptr_t>(ptr) % alignment == 0 && row_stride_bytes % alignment == 0;
}

// The launch parameters of quantizing a rows x cols matrix x (rows > 0, cols a multiple of
// group_size, strides in elements) into q and the scales s.
inline GroupQuantParams make_params(const void* x, int64_t x_row_stride, int x_elem_size, void* q, int64_t q_row_stride,
                                    float* s, int64_t s_row_stride, int64_t s_col_stride, int64_t rows, int64_t cols,
                                    int group_size, float eps, bool use_ue8m0, bool fp8) {
  GroupQuantParams p{};
  p.x = x;
  p.q = q;
  p.s = s;
  p.x_row_stride = x_row_stride;
  p.q_row_stride = q_row_stride;
  p.s_row_stride = s_row_stride;
  p.s_col_stride = s_col_stride;
  const int64_t groups_per_row = cols / group_size;
  p.num_groups = static_cast<uint32_t>(rows * groups_per_row);
  p.groups_per_row = static_cast<uint32_t>(groups_per_row);
  make_magic(p.groups_per_row, p.row_magic, p.row_shift);
  // A scale column is strided when s is column-major with more than one row.
  if (s_row_stride == 1 && rows >= kBandRows) {
    p.banded_rows = static_cast<uint32_t>(rows / kBandRows * kBandRows);
    p.band_groups = kBandRows * p.groups_per_row;
    p.banded_groups = p.banded_rows * p.groups_per_row;
    make_magic(p.band_groups, p.band_magic, p.band_shift);
  }
  p.group_size = group_size;
  p.eps = eps;
  p.use_ue8m0 = use_ue8m0;
  p.vector_loads = aligned(x, x_row_stride * x_elem_size, 16);
  p.vector_stores = aligned(q, q_row_stride, 16);
  p.qmax = fp8 ? 448.0f : 127.0f;
  p.inv_qmax = fp8 ? 1.0f / 448.0f : 1.0f / 127.0f;
  return p;
}

template <typename InT, typename Out, int N>
cudaError_t launch_n(GroupQuantParams p, cudaStream_t stream) {
  p.lanes_log2 = __builtin_ctz(static_cast<unsigned>(p.group_size / N));
  p.num_items = uint64_t(p.num_groups) << p.lanes_log2;
  const int threads = block_threads(p.num_items);
  const dim3 grid(static_cast<unsigned>((p.num_items + threads - 1) / threads));
  return launch_with_pdl(per_token_group_quant_kernel<InT, Out, N>, grid, dim3(threads), stream, p);
}

// InT: __nv_bfloat16, __half or float; Out: Fp8Out or Int8Out.
template <typename InT, typename Out>
cudaError_t launch(const GroupQuantParams& p, cudaStream_t stream) {
  const bool wide = p.group_size >= kMaxElemsPerThread &&
                    int64_t(p.num_groups) * p.group_size >= kMinElemsForWideThreads;
  return wide ? launch_n<InT, Out, kMaxElemsPerThread>(p, stream) : launch_n<InT, Out, kMinElemsPerThread>(p, stream);
}

}  // namespace qbench::group_quant
