#pragma once
// The activation both probes of this directory quantize: random bf16 rows (probe::mix), some of
// them scaled far up and some all zero, so that the scales vary and the zero-row path runs.
#include <cuda_bf16.h>

#include <cstdint>

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

}  // namespace probe
