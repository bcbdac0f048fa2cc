// Per-token-group quantization of activations to FP8 (e4m3) or INT8.
//
// Memory-bound: each thread owns 8 consecutive elements of one group (a 16-byte load for
// 16-bit inputs), the G / 8 threads of a group reduce |x| with shuffles, and lane 0 of the
// group writes its scale. One kernel per (input dtype, output dtype); the group size, the
// scale layout, UE8M0 and the vector/scalar access path are run-time arguments, so the build
// stays small.
//
// Bit-exact with qbench_ext.reference: amax is the max of |x| compared as IEEE bit patterns
// (monotone for non-negative floats, and a NaN outranks every number, so NaN propagates),
// and both the scale and the quotient x / s are correctly rounded fp32 divisions.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <torch/library.h>

#include <cstdint>

#include "quantization/quant_checks.h"

namespace qbench {
namespace {

constexpr int kElemsPerThread = 8;
constexpr int kThreadsPerBlock = 256;

struct GroupQuantParams {
  const void* x;
  void* q;
  float* s;
  int64_t x_row_stride;  // elements
  int64_t q_row_stride;  // elements
  int64_t s_row_stride;  // elements
  int64_t s_col_stride;  // elements
  uint32_t rows;
  uint32_t groups_per_row;
  uint32_t num_groups;  // rows * groups_per_row
  int group_size;
  int lanes_log2;  // log2(group_size / kElemsPerThread)
  float eps;
  float qmax;
  bool use_ue8m0;
  // Consecutive groups walk down a column of s (column-major scales), so a warp's scale
  // stores are contiguous; otherwise they walk along a row.
  bool column_order;
  bool vector_loads;   // x and its row stride are 16-byte aligned
  bool vector_stores;  // q and its row stride are 8-byte aligned
};

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }

template <typename T>
__device__ __forceinline__ void load_chunk(const T* src, bool vector, float (&out)[kElemsPerThread]) {
  if (vector) {
    constexpr int kPerVec = 16 / sizeof(T);
    static_assert(kElemsPerThread % kPerVec == 0, "a chunk is whole 16-byte vectors");
#pragma unroll
    for (int v = 0; v < kElemsPerThread / kPerVec; ++v) {
      const uint4 raw = __ldg(reinterpret_cast<const uint4*>(src) + v);
      const T* elems = reinterpret_cast<const T*>(&raw);
#pragma unroll
      for (int i = 0; i < kPerVec; ++i) out[v * kPerVec + i] = to_float(elems[i]);
    }
  } else {
#pragma unroll
    for (int i = 0; i < kElemsPerThread; ++i) out[i] = to_float(src[i]);
  }
}

// Smallest power of two >= s, from the bits (exact; NaN and Inf pass through).
__device__ __forceinline__ float ceil_pow2(float s) {
  uint32_t b = __float_as_uint(s);
  const uint32_t exponent = b & 0x7f800000u;
  if ((b & 0x007fffffu) != 0 && exponent != 0x7f800000u) b = exponent + 0x00800000u;
  return __uint_as_float(b);
}

struct Fp8Out {
  using Packed = uint2;
  static __device__ __forceinline__ uint8_t one(float v) {
    // satfinite: +-Inf and out-of-range values saturate to +-448; NaN stays NaN.
    return static_cast<uint8_t>(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
  }
  static __device__ __forceinline__ uint32_t four(const float* v) {
    const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(v[0], v[1]), __NV_SATFINITE, __NV_E4M3);
    const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(v[2], v[3]), __NV_SATFINITE, __NV_E4M3);
    return lo | (hi << 16);
  }
};

struct Int8Out {
  static __device__ __forceinline__ uint8_t one(float v) {
    // Round half to even; float-to-int conversion saturates and maps NaN to 0.
    const int r = max(-128, min(127, __float2int_rn(v)));
    return static_cast<uint8_t>(static_cast<int8_t>(r));
  }
  static __device__ __forceinline__ uint32_t four(const float* v) {
    return uint32_t(one(v[0])) | (uint32_t(one(v[1])) << 8) | (uint32_t(one(v[2])) << 16) |
           (uint32_t(one(v[3])) << 24);
  }
};

template <typename InT, typename Out>
__global__ void __launch_bounds__(kThreadsPerBlock)
    per_token_group_quant_kernel(const GroupQuantParams p) {
  const uint64_t thread = uint64_t(blockIdx.x) * kThreadsPerBlock + threadIdx.x;
  const uint32_t lanes = 1u << p.lanes_log2;
  const uint64_t group64 = thread >> p.lanes_log2;
  // Groups never straddle a warp (lanes divides 32), so a whole group leaves together.
  if (group64 >= p.num_groups) return;
  const uint32_t group = static_cast<uint32_t>(group64);
  const uint32_t lane = static_cast<uint32_t>(thread) & (lanes - 1);
  const uint32_t row = p.column_order ? group % p.rows : group / p.groups_per_row;
  const uint32_t col_group = p.column_order ? group / p.rows : group % p.groups_per_row;
  const int64_t col = int64_t(col_group) * p.group_size + int64_t(lane) * kElemsPerThread;

  float v[kElemsPerThread];
  load_chunk(static_cast<const InT*>(p.x) + int64_t(row) * p.x_row_stride + col, p.vector_loads, v);

  uint32_t amax_bits = 0;
#pragma unroll
  for (int i = 0; i < kElemsPerThread; ++i) amax_bits = max(amax_bits, __float_as_uint(v[i]) & 0x7fffffffu);
  const uint32_t warp_lane = threadIdx.x & 31u;
  const uint32_t group_mask = (lanes == 32u) ? 0xffffffffu : (((1u << lanes) - 1u) << (warp_lane & ~(lanes - 1u)));
  for (uint32_t offset = lanes >> 1; offset > 0; offset >>= 1)
    amax_bits = max(amax_bits, __shfl_xor_sync(group_mask, amax_bits, offset));

  float amax = __uint_as_float(amax_bits);
  amax = amax < p.eps ? p.eps : amax;  // keeps NaN
  float scale = __fdiv_rn(amax, p.qmax);
  if (p.use_ue8m0) scale = ceil_pow2(scale);

#pragma unroll
  for (int i = 0; i < kElemsPerThread; ++i) v[i] = __fdiv_rn(v[i], scale);

  uint8_t* q = static_cast<uint8_t*>(p.q) + int64_t(row) * p.q_row_stride + col;
  if (p.vector_stores) {
    *reinterpret_cast<uint2*>(q) = make_uint2(Out::four(v), Out::four(v + 4));
  } else {
#pragma unroll
    for (int i = 0; i < kElemsPerThread; ++i) q[i] = Out::one(v[i]);
  }
  if (lane == 0) p.s[int64_t(row) * p.s_row_stride + int64_t(col_group) * p.s_col_stride] = scale;
}

bool aligned(const void* ptr, int64_t row_stride_bytes, int alignment) {
  return reinterpret_cast<uintptr_t>(ptr) % alignment == 0 && row_stride_bytes % alignment == 0;
}

template <typename Out>
void launch(const at::Tensor& x, GroupQuantParams& p, cudaStream_t stream) {
  const uint64_t threads = uint64_t(p.num_groups) << p.lanes_log2;
  const uint64_t blocks = (threads + kThreadsPerBlock - 1) / kThreadsPerBlock;
  switch (x.scalar_type()) {
    case at::kBFloat16:
      per_token_group_quant_kernel<__nv_bfloat16, Out><<<blocks, kThreadsPerBlock, 0, stream>>>(p);
      break;
    case at::kHalf:
      per_token_group_quant_kernel<__half, Out><<<blocks, kThreadsPerBlock, 0, stream>>>(p);
      break;
    case at::kFloat:
      per_token_group_quant_kernel<float, Out><<<blocks, kThreadsPerBlock, 0, stream>>>(p);
      break;
    default:
      TORCH_CHECK_TYPE(false, "x must be bfloat16, float16 or float32, got ", x.scalar_type());
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void per_token_group_quant(const at::Tensor& x, at::Tensor& q, at::Tensor& s, int64_t group_size,
                           double eps, bool use_ue8m0) {
  check_group_quant_args(x, q, s, group_size, eps, kElemsPerThread);
  const int64_t rows = x.size(0), cols = x.size(1);
  const int64_t groups_per_row = cols / group_size;
  if (rows == 0 || groups_per_row == 0) return;

  const c10::cuda::CUDAGuard guard(x.device());
  GroupQuantParams p{};
  p.x = x.data_ptr();
  p.q = q.data_ptr();
  p.s = s.data_ptr<float>();
  p.x_row_stride = x.stride(0);
  p.q_row_stride = q.stride(0);
  p.s_row_stride = s.stride(0);
  p.s_col_stride = s.stride(1);
  p.rows = static_cast<uint32_t>(rows);
  p.groups_per_row = static_cast<uint32_t>(groups_per_row);
  p.num_groups = static_cast<uint32_t>(rows * groups_per_row);
  p.group_size = static_cast<int>(group_size);
  p.lanes_log2 = __builtin_ctz(static_cast<unsigned>(group_size / kElemsPerThread));
  p.eps = static_cast<float>(eps);
  p.use_ue8m0 = use_ue8m0;
  p.column_order = s.stride(1) != 1 && s.stride(0) == 1;
  p.vector_loads = aligned(p.x, p.x_row_stride * x.element_size(), 16);
  p.vector_stores = aligned(p.q, p.q_row_stride, 8);

  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  if (q.scalar_type() == at::kFloat8_e4m3fn) {
    p.qmax = 448.0f;
    launch<Fp8Out>(x, p, stream);
  } else {
    p.qmax = 127.0f;
    launch<Int8Out>(x, p, stream);
  }
}

}  // namespace
}  // namespace qbench

TORCH_LIBRARY_IMPL(qbench_ext, CUDA, m) {
  m.impl("per_token_group_quant", &qbench::per_token_group_quant);
}
