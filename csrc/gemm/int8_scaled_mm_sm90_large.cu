// INT8 scaled GEMM, sm90a: configurations for large M (many output tiles, compute-bound).
//
// Their kernels wait for the kernel before them, so they are launched with PDL
// (int8_scaled_mm_sm90.cuh); CUTLASS reads this before its first header.
#define CUTLASS_ENABLE_GDC_FOR_SM90
#include "gemm/int8_scaled_mm_sm90.cuh"

namespace qbench::int8_mm {

// 128x256 tiles, 2 consumer warpgroups of 64x256 each (wgmma's most efficient N), a 2x1
// cluster multicasting the B (weight) tile to both CTAs.
std::string sm90_128x256x128_c2x1_coop(const Problem& p) {
  return run_sm90_config<Sm90Config<128, 256, 128, 2, 1, Cooperative, CooperativeEpi, Persistent, false>>(p);
}

// 256x128 tiles, each consumer warpgroup 128x128.
std::string sm90_256x128x128_c2x1_coop(const Problem& p) {
  return run_sm90_config<Sm90Config<256, 128, 128, 2, 1, Cooperative, CooperativeEpi, Persistent, false>>(p);
}

}  // namespace qbench::int8_mm
