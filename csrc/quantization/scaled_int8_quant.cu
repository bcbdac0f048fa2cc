// Per-token (dynamic) and per-tensor (static) INT8 quantization of activations, symmetric
// or with zero points (asymmetric); the vLLM scaled_int8_quant interface.
//
// Memory-bound. A row is split into 16-byte chunks (8 bf16/fp16 or 4 fp32 elements); the
// threads of a row group own chunks lane, lane + T, lane + 2T, ... (T threads per row, so
// every load instruction of a warp is contiguous). The first T * chunks_per_thread chunks of
// the row stay in registers between the reduction and the quantization, so rows of up to
// 1024 * 4 chunks (32768 bf16 / 16384 fp32 elements) are read from DRAM once; the rest of a
// longer row is read twice (the second time mostly from L2).
//
// Dynamic rows of 16 to 56 KB (16-byte aligned, at least twice as many rows as SMs) instead
// stream through a ring of shared-memory row buffers filled by the copy engine
// (dynamic_int8_quant_ring_kernel, below).
//
// Rows of more than 128 chunks get a block of their own (T = blockDim, reduction through
// warp shuffles and shared memory); shorter rows share 256-thread blocks in power-of-two
// groups of T <= 32 threads, reduced with shuffles alone. One kernel per input dtype: the
// mode (dynamic or static, with or without zero points), the group shape and the vector or
// scalar memory path are run-time arguments.
//
// The reduction keeps, per row, the largest positive value and the largest magnitude of a
// negative value, both as IEEE bit patterns compared as signed integers (monotone for
// non-negative floats; a NaN outranks every number, so a NaN of either sign reaches one of
// the two and propagates). The asymmetric range is their sum, i.e. the range
// [min(x, 0), max(x, 0)]; the symmetric amax, the larger of the two, is reduced directly as
// the largest magnitude. For bf16/fp16 the maxima are taken on packed 16-bit pairs
// (max.s16x2). Divisions are correctly rounded fp32 divisions, rounding to integer is
// half-to-even, and the result is bit-exact with qbench_ext.reference_int8_quant (see its
// docstring for the exact specification).
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "core/pdl.cuh"
#include "core/pdl_writes.h"

namespace qbench {
namespace {

constexpr int kMaxChunksPerThread = 4;  // 16-byte chunks of a row a thread keeps in registers
constexpr int kMaxThreads = 1024;
constexpr int kSharedBlockThreads = 256;  // block size when several rows share a block
// Floors of the symmetric amax and of the asymmetric range: the scale is never below
// 2^-126 (FLT_MIN), so all-zero rows get s = 2^-126 and q = 0 (azp = -128), without NaN.
constexpr float kSymFloor = 127.0f * 1.17549435e-38f;   // 127 * 2^-126, exact
constexpr float kAsymFloor = 255.0f * 1.17549435e-38f;  // 255 * 2^-126, exact

struct Int8QuantParams {
  const void* x;
  int8_t* q;
  float* scale_out;        // dynamic: (rows,) per-token scales
  int32_t* azp_out;        // dynamic asymmetric: (rows,) zero points
  const float* scale_in;   // static: the per-tensor scale
  const int32_t* azp_in;   // static asymmetric: the zero point, or nullptr
  int64_t x_row_stride;    // elements
  int64_t q_row_stride;    // elements
  int64_t rows;
  int cols;
  int chunks;              // ceil(cols / elements per chunk)
  int chunks_per_thread;   // 1..kMaxChunksPerThread
  int threads_per_row;     // a power of two <= 32, or blockDim.x (one row per block)
  bool dynamic;
  bool asymmetric;
  bool vector_loads;   // x and its row stride are 16-byte aligned, cols a whole number of chunks
  bool vector_stores;  // q and its row stride are chunk-aligned, cols a whole number of chunks
};

template <typename T>
struct Elem;

template <>
struct Elem<__nv_bfloat16> {
  static constexpr bool kPacked16 = true;
  static __device__ __forceinline__ float lo(uint32_t w) { return __uint_as_float(w << 16); }
  static __device__ __forceinline__ float hi(uint32_t w) { return __uint_as_float(w & 0xffff0000u); }
};

template <>
struct Elem<__half> {
  static constexpr bool kPacked16 = true;
  static __device__ __forceinline__ float lo(uint32_t w) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(w & 0xffffu)));
  }
  static __device__ __forceinline__ float hi(uint32_t w) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(w >> 16)));
  }
};

template <>
struct Elem<float> {
  static constexpr bool kPacked16 = false;
};

template <typename T>
constexpr int kElemsPerChunk = 16 / static_cast<int>(sizeof(T));

// One 16-byte chunk of a row: a vector load, or element loads (zero past the row's end;
// zeros change neither maximum).
template <typename T>
__device__ __forceinline__ uint4 load_chunk(const T* row, int chunk, int cols, bool vector) {
  constexpr int kElems = kElemsPerChunk<T>;
  if (vector) return __ldg(reinterpret_cast<const uint4*>(row) + chunk);
  uint4 raw = make_uint4(0u, 0u, 0u, 0u);
  T* elems = reinterpret_cast<T*>(&raw);
  const int col0 = chunk * kElems;
#pragma unroll
  for (int i = 0; i < kElems; ++i)
    if (col0 + i < cols) elems[i] = row[col0 + i];
  return raw;
}

// Running maxima of the positive values (pos) and of the negated negative values (neg), as
// bit patterns compared as signed integers: negative patterns never win against the initial 0.
// For 16-bit inputs they are packed pairs, one per half-word. Symmetric quantization needs
// only max(pos, neg), the largest magnitude: it goes to pos (one maximum a word, not two),
// and neg stays 0.
template <typename T>
__device__ __forceinline__ void accumulate(const uint4& raw, uint32_t& pos, uint32_t& neg, bool asymmetric) {
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if constexpr (Elem<T>::kPacked16) {
      if (asymmetric) {
        pos = __vmaxs2(pos, w[i]);
        neg = __vmaxs2(neg, w[i] ^ 0x80008000u);
      } else {
        pos = __vmaxs2(pos, w[i] & 0x7fff7fffu);
      }
    } else {
      if (asymmetric) {
        pos = static_cast<uint32_t>(max(static_cast<int32_t>(pos), static_cast<int32_t>(w[i])));
        neg = static_cast<uint32_t>(max(static_cast<int32_t>(neg), static_cast<int32_t>(w[i] ^ 0x80000000u)));
      } else {
        pos = max(pos, w[i] & 0x7fffffffu);
      }
    }
  }
}

// Packed 16-bit maxima to the fp32 bit pattern of the larger of the two (exact).
template <typename T>
__device__ __forceinline__ uint32_t unpack_max(uint32_t packed) {
  if constexpr (Elem<T>::kPacked16) {
    return max(__float_as_uint(Elem<T>::lo(packed)), __float_as_uint(Elem<T>::hi(packed)));
  } else {
    return packed;
  }
}

// Round half to even, then add the zero point and saturate; NaN quantizes to the zero point.
// Exact for any int32 azp: |round(v)| is capped at 2^40 (far outside the int8 range either
// way) and the sum is formed in 64 bits.
__device__ __forceinline__ uint32_t quantize_wide(float v, int32_t azp) {
  v = (v != v) ? 0.0f : fminf(fmaxf(v, -1099511627776.0f), 1099511627776.0f);
  const long long r = __float2ll_rn(v) + azp;
  return static_cast<uint8_t>(static_cast<int8_t>(r < -128 ? -128 : (r > 127 ? 127 : r)));
}

// Four int32 to int8 with saturation, packed little-endian (a0 in the low byte): two
// instructions, where clamping and shifting each byte took four.
__device__ __forceinline__ uint32_t pack_sat_s8(int a0, int a1, int a2, int a3) {
  uint32_t high, packed;
  asm("cvt.pack.sat.s8.s32.b32 %0, %1, %2, 0;" : "=r"(high) : "r"(a3), "r"(a2));
  asm("cvt.pack.sat.s8.s32.b32 %0, %1, %2, %3;" : "=r"(packed) : "r"(a1), "r"(a0), "r"(high));
  return packed;
}

// How a chunk's quotients v = x / s become int8 (all round half to even and saturate):
//  - kSymmetric: round(v). The float-to-int conversion saturates and maps NaN to 0.
//  - kZeroPoint: round(v) + azp, for |v| bounded (dynamic: |x / s| <= 255 + rounding, and
//    |azp| <= 128), so the int32 sum cannot overflow.
//  - kWideZeroPoint: any v and any int32 azp (static zero points), by quantize_wide.
enum class Rounding { kSymmetric, kZeroPoint, kWideZeroPoint };

// x / b, correctly rounded, for one divisor b and many x. __fdiv_rn's fast path computes
//   r = fma(r0, fma(r0, -b, 1), r0)   with r0 = MUFU.RCP(b)  (depends on b only)
//   q0 = x * r;  e = fma(q0, -b, x);  q = fma(r, e, q0)
// and falls back to a slow path when FCHK finds x or b out of its safe range. Here r is
// computed once per row, and the safe range is checked once per row and (for static scales)
// once per chunk: b normal with exponent in [-96, 100], and |x| < 2^(e_b + 61) (so x is
// finite and |x / b| < 2^62). Inside that range no intermediate overflows, r is normal, and
// for |x / b| >= 2^-3 (|x| >= 2^-99) e is exact, so q is the same as __fdiv_rn's (the fast
// path's arithmetic is scale-invariant); smaller quotients only need to round to 0, which they
// do. Outside it, every element goes through __fdiv_rn.
struct Divisor {
  float b;
  float r;
  uint32_t x_bits_limit;  // |x| bit patterns below this take the fast path
  bool fast;              // b is inside the fast path's range
};

__device__ __forceinline__ Divisor make_divisor(float b, bool zero_row) {
  Divisor d;
  d.b = b;
  const uint32_t eb = (__float_as_uint(b) >> 23) & 0xffu;  // biased exponent
  d.fast = (eb >= 127u - 96u && eb <= 127u + 100u) || zero_row;
  float r0;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r0) : "f"(b));
  d.r = fmaf(r0, fmaf(r0, -b, 1.0f), r0);
  d.x_bits_limit = min(eb + 61u, 255u) << 23;
  return d;
}

__device__ __forceinline__ float div_fast(float x, const Divisor& d) {
  const float q0 = x * d.r;
  const float e = fmaf(q0, -d.b, x);
  return fmaf(d.r, e, q0);
}

template <typename T>
__device__ __forceinline__ void unpack_chunk(const uint4& raw, float (&v)[kElemsPerChunk<T>]) {
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if constexpr (Elem<T>::kPacked16) {
      v[2 * i] = Elem<T>::lo(w[i]);
      v[2 * i + 1] = Elem<T>::hi(w[i]);
    } else {
      v[i] = __uint_as_float(w[i]);
    }
  }
}

// Quantizes one chunk: 8 (16-bit inputs) or 4 (fp32) bytes, packed little-endian. check_x:
// |x| is not known to be below 2^(e_b + 61) (static scales).
template <typename T, Rounding kMode>
__device__ __forceinline__ uint2 quantize_chunk(const uint4& raw, const Divisor& d, int32_t azp, bool check_x) {
  constexpr int kElems = kElemsPerChunk<T>;
  float v[kElems];
  unpack_chunk<T>(raw, v);
  bool fast = d.fast;
  if (check_x) {
#pragma unroll
    for (int i = 0; i < kElems; ++i) fast = fast && (__float_as_uint(v[i]) & 0x7fffffffu) < d.x_bits_limit;
  }
  if (fast) {
#pragma unroll
    for (int i = 0; i < kElems; ++i) v[i] = div_fast(v[i], d);
  } else {
#pragma unroll
    for (int i = 0; i < kElems; ++i) v[i] = __fdiv_rn(v[i], d.b);
  }
  if constexpr (kMode == Rounding::kWideZeroPoint) {
    uint32_t b[8] = {0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u};
#pragma unroll
    for (int i = 0; i < kElems; ++i) b[i] = quantize_wide(v[i], azp);
    return make_uint2(b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24), b[4] | (b[5] << 8) | (b[6] << 16) | (b[7] << 24));
  } else {
    int r[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#pragma unroll
    for (int i = 0; i < kElems; ++i) r[i] = __float2int_rn(v[i]) + (kMode == Rounding::kZeroPoint ? azp : 0);
    return make_uint2(pack_sat_s8(r[0], r[1], r[2], r[3]), kElems == 8 ? pack_sat_s8(r[4], r[5], r[6], r[7]) : 0u);
  }
}

template <typename T>
__device__ __forceinline__ void store_chunk(int8_t* row, int chunk, int cols, bool vector, uint2 packed) {
  constexpr int kElems = kElemsPerChunk<T>;
  if (vector) {
    if constexpr (kElems == 8) {
      reinterpret_cast<uint2*>(row)[chunk] = packed;
    } else {
      reinterpret_cast<uint32_t*>(row)[chunk] = packed.x;
    }
    return;
  }
  const int col0 = chunk * kElems;
#pragma unroll
  for (int i = 0; i < kElems; ++i) {
    const uint32_t word = i < 4 ? packed.x : packed.y;
    if (col0 + i < cols) row[col0 + i] = static_cast<int8_t>((word >> (8 * (i & 3))) & 0xffu);
  }
}

// Quantizes a thread's chunks of its row: those of the first tile from registers, the rest
// (rows longer than a tile only: chunks_per_thread is then kMaxChunksPerThread) read again
// from memory.
template <typename T, Rounding kMode>
__device__ __forceinline__ void quantize_row(const uint4 (&regs)[kMaxChunksPerThread], const T* x, int8_t* q, int lane,
                                             int tpr, int tile, int chunks, const Int8QuantParams& p, const Divisor& d,
                                             int32_t azp) {
  const bool check_x = !p.dynamic;
#pragma unroll
  for (int j = 0; j < kMaxChunksPerThread; ++j) {
    const int c = lane + j * tpr;
    if (j < p.chunks_per_thread && c < chunks)
      store_chunk<T>(q, c, p.cols, p.vector_stores, quantize_chunk<T, kMode>(regs[j], d, azp, check_x));
  }
  for (int base = tile + lane; base < chunks; base += tile) {
    uint4 raw[kMaxChunksPerThread];
#pragma unroll
    for (int j = 0; j < kMaxChunksPerThread; ++j) {
      const int c = base + j * tpr;
      if (c < chunks) raw[j] = load_chunk(x, c, p.cols, p.vector_loads);
    }
#pragma unroll
    for (int j = 0; j < kMaxChunksPerThread; ++j) {
      const int c = base + j * tpr;
      if (c < chunks) store_chunk<T>(q, c, p.cols, p.vector_stores, quantize_chunk<T, kMode>(raw[j], d, azp, check_x));
    }
  }
}

// The maxima over aligned groups of `width` lanes (a power of two <= 32).
__device__ __forceinline__ void group_max(uint32_t& pos, uint32_t& neg, int width) {
  for (int offset = width >> 1; offset > 0; offset >>= 1) {
    pos = max(pos, __shfl_xor_sync(0xffffffffu, pos, offset));
    neg = max(neg, __shfl_xor_sync(0xffffffffu, neg, offset));
  }
}

// The row maxima across the warps of a block, after each warp has reduced its own: through
// `partial` (one slot per warp) and one __syncthreads, so a block that reuses `partial` for its
// next row must synchronise again before it writes there.
__device__ __forceinline__ void cross_warp_max(uint32_t& pos, uint32_t& neg, uint32_t (*partial)[kMaxThreads / 32]) {
  const int warp = threadIdx.x >> 5, warp_lane = threadIdx.x & 31;
  const int warps = blockDim.x >> 5;
  if (warp_lane == 0) {
    partial[0][warp] = pos;
    partial[1][warp] = neg;
  }
  __syncthreads();
  pos = warp_lane < warps ? partial[0][warp_lane] : 0u;
  neg = warp_lane < warps ? partial[1][warp_lane] : 0u;
  group_max(pos, neg, 32);
}

struct RowScale {
  float s;
  int32_t azp;
  bool zero_row;
};

// A dynamic row's scale (and zero point) from its reduced maxima, as fp32 bit patterns:
// pos = max(max(x), 0), neg = -min(min(x), 0) (symmetric: pos = max |x|, neg = 0).
__device__ __forceinline__ RowScale row_scale(uint32_t pos, uint32_t neg, bool asymmetric) {
  RowScale r;
  r.zero_row = (pos | neg) == 0u;
  r.azp = 0;
  const float pos_max = __uint_as_float(pos);
  const float neg_max = __uint_as_float(neg);
  if (asymmetric) {
    float range = pos_max + neg_max;
    range = range < kAsymFloor ? kAsymFloor : range;  // keeps NaN
    r.s = __fdiv_rn(range, 255.0f);
    const float zp = -128.0f + __fdiv_rn(neg_max, r.s);
    r.azp = (zp != zp) ? 0 : __float2int_rn(zp);
  } else {
    float amax = __uint_as_float(max(pos, neg));
    amax = amax < kSymFloor ? kSymFloor : amax;  // keeps NaN
    r.s = __fdiv_rn(amax, 127.0f);
  }
  return r;
}

template <typename T>
__global__ void __launch_bounds__(kMaxThreads) scaled_int8_quant_kernel(const Int8QuantParams p) {
  const int tpr = p.threads_per_row;
  const bool shared_block = tpr < static_cast<int>(blockDim.x);
  const int64_t row = shared_block ? int64_t(blockIdx.x) * (blockDim.x / tpr) + threadIdx.x / tpr : int64_t(blockIdx.x);
  const int lane = shared_block ? static_cast<int>(threadIdx.x) & (tpr - 1) : static_cast<int>(threadIdx.x);
  // Threads past the last row stay to the end (with no chunks), so that the shuffles and
  // barriers below always see whole warps and blocks.
  const bool active = row < p.rows;
  const T* x = static_cast<const T*>(p.x) + (active ? row : 0) * p.x_row_stride;
  int8_t* q = p.q + (active ? row : 0) * p.q_row_stride;
  const int chunks = active ? p.chunks : 0;
  const int tile = tpr * p.chunks_per_thread;  // chunks of the row held in registers
  // Launched with PDL: the launch and the index math above overlap the kernel before it (in a
  // dynamic-quantization GEMM, the previous GEMM's tail); no memory is touched before this.
  pdl_wait();

  // The first tile of the row, kept in registers: every load is issued before any use.
  uint4 regs[kMaxChunksPerThread];
#pragma unroll
  for (int j = 0; j < kMaxChunksPerThread; ++j) {
    const int c = lane + j * tpr;
    regs[j] = make_uint4(0u, 0u, 0u, 0u);
    if (j < p.chunks_per_thread && c < chunks) regs[j] = load_chunk(x, c, p.cols, p.vector_loads);
  }

  float s;
  int32_t azp = 0;
  bool zero_row = false;
  if (p.dynamic) {
    uint32_t pos = 0, neg = 0;
#pragma unroll
    for (int j = 0; j < kMaxChunksPerThread; ++j) accumulate<T>(regs[j], pos, neg, p.asymmetric);
    // The rest of a long row: reduce now, quantize after a second read.
    for (int base = tile + lane; base < chunks; base += tile) {
      uint4 raw[kMaxChunksPerThread];
#pragma unroll
      for (int j = 0; j < kMaxChunksPerThread; ++j) {
        const int c = base + j * tpr;
        raw[j] = make_uint4(0u, 0u, 0u, 0u);
        if (j < p.chunks_per_thread && c < chunks) raw[j] = load_chunk(x, c, p.cols, p.vector_loads);
      }
#pragma unroll
      for (int j = 0; j < kMaxChunksPerThread; ++j) accumulate<T>(raw[j], pos, neg, p.asymmetric);
    }
    pos = unpack_max<T>(pos);
    neg = unpack_max<T>(neg);

    // Row reduction: within the row's threads of a warp (xor shuffles stay inside aligned
    // power-of-two groups), then across the warps of the block through shared memory.
    group_max(pos, neg, min(tpr, 32));
    if (!shared_block && blockDim.x > 32) {
      __shared__ uint32_t partial[2][kMaxThreads / 32];
      cross_warp_max(pos, neg, partial);
    }
    const RowScale rs = row_scale(pos, neg, p.asymmetric);
    s = rs.s;
    azp = rs.azp;
    zero_row = rs.zero_row;
    if (active && lane == 0) {
      p.scale_out[row] = s;
      if (p.asymmetric) p.azp_out[row] = azp;
    }
  } else {
    s = __ldg(p.scale_in);
    if (p.azp_in != nullptr) azp = __ldg(p.azp_in);
  }

  const Divisor d = make_divisor(s, zero_row);
  if (!p.asymmetric) {
    quantize_row<T, Rounding::kSymmetric>(regs, x, q, lane, tpr, tile, chunks, p, d, 0);
  } else if (p.dynamic) {
    quantize_row<T, Rounding::kZeroPoint>(regs, x, q, lane, tpr, tile, chunks, p, d, azp);
  } else {
    // Static zero points are arbitrary int32 values: they take the exact 64-bit path.
    quantize_row<T, Rounding::kWideZeroPoint>(regs, x, q, lane, tpr, tile, chunks, p, d, azp);
  }
}

// Dynamic quantization of long rows (16 to 56 KB) through shared memory: a persistent kernel
// whose blocks each take rows blockIdx.x, blockIdx.x + gridDim.x, ... and stream them into a
// ring of row buffers with the copy engine (cp.async.bulk, completion counted on an mbarrier
// per buffer). The kernel above holds a row in registers, so an SM has at most 64 KB of loads
// in flight (1024 threads of 64 regs, 64 bytes each), and none while a block reduces and
// stores. Here the bytes in flight are bounded by shared memory, and the next rows arrive
// while this one is reduced and quantized. The arithmetic is that of the kernel above (same
// helpers), so the result is the same bit for bit.
//
// Measured on an H200 against the kernel above (bf16, graph replays, one run): K = 14336
// 2181-3220 -> 2314-3787 GB/s over M = 300..16384 (vLLM's kernel: 2843-4451); K = 8192 a tie
// (-9% to +9%); K = 4096 (8 KB rows) 5-26% slower, as a block's one row at a time then
// spends more time in its chain of reduction latencies than in waiting for bytes. Hence the
// 16 KB floor.
constexpr int kRingMaxThreads = 256;
constexpr int kRingChunksPerThread = 8;       // a row's chunks per thread, up to kRingMaxThreads
constexpr int kRingMaxStages = 8;
constexpr int kRingBytesPerBlock = 32 * 1024;  // stages * row bytes, at least 2 stages
constexpr int kRingMinRowBytes = 16 * 1024;    // exclusive; shorter rows: the kernel above
constexpr int kRingMaxRowBytes = 56 * 1024;    // two stages of it still fit twice in an SM

__device__ __forceinline__ uint32_t shared_address(const void* ptr) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(ptr));
}

__device__ __forceinline__ void ring_load(uint32_t dst, const void* src, uint32_t bytes, uint32_t barrier) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(barrier), "r"(bytes) : "memory");
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(barrier)
               : "memory");
}

__device__ __forceinline__ void ring_wait(uint32_t barrier, uint32_t parity) {
  uint32_t done;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(barrier), "r"(parity)
        : "memory");
  } while (!done);
}

// Quantizes a row held in shared memory (the ring kernel below).
template <typename T, Rounding kMode>
__device__ __forceinline__ void quantize_buffer(const uint4* buffer, int8_t* q, const Int8QuantParams& p,
                                                const Divisor& d, int32_t azp) {
  for (int c = threadIdx.x; c < p.chunks; c += blockDim.x)
    store_chunk<T>(q, c, p.cols, p.vector_stores, quantize_chunk<T, kMode>(buffer[c], d, azp, false));
}

// Needs: p.dynamic, p.vector_loads (16-byte aligned rows of whole chunks), chunks * 16 <=
// stage_bytes, stage_bytes a multiple of 16.
template <typename T>
__global__ void __launch_bounds__(kRingMaxThreads) dynamic_int8_quant_ring_kernel(const Int8QuantParams p, int stages,
                                                                              int stage_bytes) {
  extern __shared__ __align__(128) unsigned char ring[];
  __shared__ uint64_t full[kRingMaxStages];
  __shared__ uint32_t partial[2][kMaxThreads / 32];
  const uint32_t row_bytes = static_cast<uint32_t>(p.chunks) * 16u;
  if (threadIdx.x == 0) {
    for (int s = 0; s < stages; ++s)
      asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(shared_address(&full[s])) : "memory");
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  pdl_wait();

  // The i-th row of this block into buffer i % stages, by thread 0.
  auto issue = [&](int64_t i) {
    const int64_t row = blockIdx.x + i * gridDim.x;
    if (row >= p.rows) return;
    const int s = static_cast<int>(i % stages);
    ring_load(shared_address(ring + s * stage_bytes), static_cast<const T*>(p.x) + row * p.x_row_stride, row_bytes,
              shared_address(&full[s]));
  };
  if (threadIdx.x == 0)
    for (int i = 0; i < stages; ++i) issue(i);

  for (int64_t i = 0, row = blockIdx.x; row < p.rows; ++i, row += gridDim.x) {
    const int s = static_cast<int>(i % stages);
    ring_wait(shared_address(&full[s]), static_cast<uint32_t>(i / stages) & 1u);
    const uint4* buffer = reinterpret_cast<const uint4*>(ring + s * stage_bytes);

    uint32_t pos = 0, neg = 0;
    for (int c = threadIdx.x; c < p.chunks; c += blockDim.x) accumulate<T>(buffer[c], pos, neg, p.asymmetric);
    pos = unpack_max<T>(pos);
    neg = unpack_max<T>(neg);
    group_max(pos, neg, 32);
    cross_warp_max(pos, neg, partial);
    const RowScale rs = row_scale(pos, neg, p.asymmetric);
    if (threadIdx.x == 0) {
      p.scale_out[row] = rs.s;
      if (p.asymmetric) p.azp_out[row] = rs.azp;
    }

    const Divisor d = make_divisor(rs.s, rs.zero_row);
    int8_t* q = p.q + row * p.q_row_stride;
    if (p.asymmetric) {
      quantize_buffer<T, Rounding::kZeroPoint>(buffer, q, p, d, rs.azp);
    } else {
      quantize_buffer<T, Rounding::kSymmetric>(buffer, q, p, d, 0);
    }
    __syncthreads();  // every thread is done with this buffer and with `partial`
    if (threadIdx.x == 0) {
      // The buffer was read through the generic proxy; the copy engine writes it next.
      asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
      issue(i + stages);
    }
  }
}

bool aligned(const void* ptr, int64_t row_stride_bytes, int64_t rows, int alignment) {
  return reinterpret_cast<uintptr_t>(ptr) % alignment == 0 && (rows <= 1 || row_stride_bytes % alignment == 0);
}

void check_common(const at::Tensor& q, const at::Tensor& x, const at::Tensor& scale,
                  const std::optional<at::Tensor>& azp) {
  TORCH_CHECK_VALUE(x.is_cuda() && q.device() == x.device() && scale.device() == x.device() &&
                        (!azp.has_value() || azp->device() == x.device()),
                    "q, x, scale and azp must be on one CUDA device, got ", q.device(), ", ", x.device(), ", ",
                    scale.device(), azp.has_value() ? ", " : "", azp.has_value() ? azp->device() : x.device());
  TORCH_CHECK_TYPE(x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kHalf || x.scalar_type() == at::kFloat,
                   "x must be bfloat16, float16 or float32, got ", x.scalar_type());
  TORCH_CHECK_TYPE(q.scalar_type() == at::kChar, "q must be int8, got ", q.scalar_type());
  TORCH_CHECK_TYPE(scale.scalar_type() == at::kFloat, "scale must be float32, got ", scale.scalar_type());
  TORCH_CHECK_TYPE(!azp.has_value() || azp->scalar_type() == at::kInt, "azp must be int32, got ",
                   azp.has_value() ? azp->scalar_type() : at::kInt);
  TORCH_CHECK_VALUE(x.dim() == 2 && (x.stride(1) == 1 || x.size(1) <= 1),
                    "x must be 2-D (M, K) with a contiguous last dim, got sizes ", x.sizes(), " strides ", x.strides());
  TORCH_CHECK_VALUE(x.stride(0) >= 0, "x must have a non-negative row stride");
  TORCH_CHECK_VALUE(q.sizes() == x.sizes() && (q.stride(1) == 1 || q.size(1) <= 1) &&
                        (q.size(0) <= 1 || q.stride(0) >= q.size(1)),
                    "q must have x's shape ", x.sizes(), " with a contiguous last dim and rows that do not overlap");
  TORCH_CHECK_VALUE(x.size(1) < (int64_t(1) << 31) - 16, "x.shape[1] is too large");
}

// Picks the kernel and its geometry for p (all but the launch geometry filled in).
template <typename T>
cudaError_t launch_kernel(Int8QuantParams& p, int sm_count, cudaStream_t stream) {
  const int64_t rows = p.rows;
  const int64_t row_bytes = int64_t(p.chunks) * 16;
  if (p.dynamic && p.vector_loads && row_bytes > kRingMinRowBytes && row_bytes <= kRingMaxRowBytes &&
      rows >= 2 * int64_t(sm_count)) {
    const int stage_bytes = static_cast<int>((row_bytes + 127) / 128 * 128);
    const int stages = std::clamp(kRingBytesPerBlock / stage_bytes, 2, kRingMaxStages);
    const int smem = stages * stage_bytes;
    // Small blocks: a block handles one row at a time, so more blocks an SM means more rows
    // in progress there (the reduction and the stores of one row are a chain of latencies).
    const int threads = std::clamp((p.chunks / kRingChunksPerThread + 31) / 32 * 32, 64, kRingMaxThreads);
    const auto kernel = dynamic_int8_quant_ring_kernel<T>;
    cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    int per_sm = 0;
    if (err == cudaSuccess) err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem);
    if (err != cudaSuccess) return err;
    const int64_t blocks = std::min<int64_t>(rows, int64_t(std::max(1, per_sm)) * sm_count);
    return launch_with_pdl_shared(kernel, dim3(static_cast<unsigned>(blocks)), dim3(threads), smem, stream, p,
                                  stages, stage_bytes);
  }

  int threads;
  int64_t blocks;
  if (p.chunks <= 32 * kMaxChunksPerThread) {
    // Short rows: power-of-two groups of <= 32 threads share 256-thread blocks.
    int tpr = 1;
    while (tpr * kMaxChunksPerThread < p.chunks) tpr *= 2;
    p.threads_per_row = tpr;
    p.chunks_per_thread = std::max(1, (p.chunks + tpr - 1) / tpr);
    threads = kSharedBlockThreads;
    const int64_t rows_per_block = kSharedBlockThreads / tpr;
    blocks = (rows + rows_per_block - 1) / rows_per_block;
  } else {
    // One block per row. With enough rows to fill the GPU, each thread keeps 4 chunks (fewer,
    // larger blocks per SM, 64 bytes in flight per thread); with few rows, the row is spread
    // over up to 1024 threads to shorten each block's critical path.
    const int fewest = static_cast<int>(std::min<int64_t>(kMaxChunksPerThread, (p.chunks + kMaxThreads - 1) / kMaxThreads));
    int cpt = rows >= 2 * int64_t(sm_count) ? kMaxChunksPerThread : std::max(1, fewest);
    threads = (p.chunks + cpt - 1) / cpt;
    threads = std::min(kMaxThreads, (threads + 31) / 32 * 32);
    p.chunks_per_thread = cpt;
    p.threads_per_row = threads;
    blocks = rows;
  }
  TORCH_CHECK_VALUE(blocks < (int64_t(1) << 31), "x has too many rows for one launch");
  return launch_with_pdl(scaled_int8_quant_kernel<T>, dim3(static_cast<unsigned>(blocks)), dim3(threads), stream, p);
}

// `written`: what the kernel writes, for the GEMM's early weight read (core/pdl_writes.h).
void launch(const at::Tensor& x, at::Tensor& q, Int8QuantParams& p, std::initializer_list<const at::Tensor*> written) {
  const int64_t rows = x.size(0), cols = x.size(1);
  const int esize = static_cast<int>(x.element_size());
  const int elems_per_chunk = 16 / esize;
  p.x = x.data_ptr();
  p.q = q.data_ptr<int8_t>();
  p.x_row_stride = x.stride(0);
  p.q_row_stride = q.stride(0);
  p.rows = rows;
  p.cols = static_cast<int>(cols);
  p.chunks = static_cast<int>((cols + elems_per_chunk - 1) / elems_per_chunk);
  const bool whole_chunks = cols % elems_per_chunk == 0;
  p.vector_loads = whole_chunks && aligned(p.x, p.x_row_stride * esize, rows, 16);
  p.vector_stores = whole_chunks && aligned(p.q, p.q_row_stride, rows, elems_per_chunk);

  const c10::cuda::CUDAGuard guard(x.device());
  const int sm_count = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  note_pdl_writes(stream, written);
  switch (x.scalar_type()) {
    case at::kBFloat16:
      C10_CUDA_CHECK(launch_kernel<__nv_bfloat16>(p, sm_count, stream));
      break;
    case at::kHalf:
      C10_CUDA_CHECK(launch_kernel<__half>(p, sm_count, stream));
      break;
    case at::kFloat:
      C10_CUDA_CHECK(launch_kernel<float>(p, sm_count, stream));
      break;
    default:
      TORCH_CHECK_TYPE(false, "x must be bfloat16, float16 or float32, got ", x.scalar_type());
  }
}

void dynamic_scaled_int8_quant(at::Tensor& q, const at::Tensor& x, at::Tensor& scale,
                               const std::optional<at::Tensor>& azp) {
  check_common(q, x, scale, azp);
  const int64_t rows = x.size(0);
  TORCH_CHECK_VALUE(scale.numel() == rows && scale.is_contiguous(), "scale must be contiguous with M = ", rows,
                    " elements (shape (M, 1)), got sizes ", scale.sizes());
  TORCH_CHECK_VALUE(!azp.has_value() || (azp->numel() == rows && azp->is_contiguous()),
                    "azp must be contiguous with M = ", rows, " elements (shape (M, 1))");
  if (rows == 0) return;
  Int8QuantParams p{};
  p.dynamic = true;
  p.asymmetric = azp.has_value();
  p.scale_out = scale.data_ptr<float>();
  p.azp_out = azp.has_value() ? azp->data_ptr<int32_t>() : nullptr;
  if (azp.has_value()) {
    launch(x, q, p, {&q, &scale, &*azp});
  } else {
    launch(x, q, p, {&q, &scale});
  }
}

void static_scaled_int8_quant(at::Tensor& q, const at::Tensor& x, const at::Tensor& scale,
                              const std::optional<at::Tensor>& azp) {
  check_common(q, x, scale, azp);
  TORCH_CHECK_VALUE(scale.numel() == 1, "scale must have one element, got sizes ", scale.sizes());
  TORCH_CHECK_VALUE(!azp.has_value() || azp->numel() == 1, "azp must have one element, got sizes ", azp->sizes());
  if (x.numel() == 0) return;
  Int8QuantParams p{};
  p.dynamic = false;
  p.asymmetric = azp.has_value();
  p.scale_in = scale.data_ptr<float>();
  p.azp_in = azp.has_value() ? azp->data_ptr<int32_t>() : nullptr;
  launch(x, q, p, {&q});
}

}  // namespace
}  // namespace qbench

TORCH_LIBRARY_IMPL(qbench_ext, CUDA, m) {
  m.impl("dynamic_scaled_int8_quant", &qbench::dynamic_scaled_int8_quant);
  m.impl("static_scaled_int8_quant", &qbench::static_scaled_int8_quant);
}
