#pragma once
// What both probes of this directory share: the activation they quantize (random bf16 rows,
// some of them scaled far up and some all zero, so that the scales vary and the zero-row path
// runs) and the reference they check against (a warp a row from global memory, the same
// arithmetic as the background quantizer).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "gemm/background_quant_row.cuh"
#include "probe_util.cuh"

namespace probe {

// Random bf16 in about [-3, 3), one row in 97 scaled by 2^20 and one in 89 all zeros.
__global__ void fill_x(__nv_bfloat16* x, int64_t m, int k, uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < m * k; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / k;
    float v = (float(probe::mix(seed * 0x9e3779b97f4a7c15ull + i) >> 8) / 8388608.0f - 1.0f) * 3.0f;
    if (row % 97 == 5) v *= 1048576.0f;
    if (row % 89 == 7) v = 0.0f;
    x[i] = __float2bfloat16(v);
  }
}

__global__ void reference_quant_kernel(const __nv_bfloat16* x, int8_t* q, float* scale, int64_t m, int k) {
  const int64_t row = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32;
  if (row >= m) return;
  qbench::int8_mm::background_quant::quantize_row<__nv_bfloat16>(
      reinterpret_cast<const uint4*>(x + row * k), k / qbench::int8_quant::kElemsPerChunk<__nv_bfloat16>,
      static_cast<int>(threadIdx.x % 32), q + row * k, scale + row);
}

// q and scale of x (M x K, contiguous) by the reference, on `stream`.
inline void reference_quant(const __nv_bfloat16* x, int8_t* q, float* scale, int64_t m, int k, cudaStream_t stream) {
  reference_quant_kernel<<<(m + 7) / 8, 256, 0, stream>>>(x, q, scale, m, k);
}

}  // namespace probe
