// INT8 scaled GEMM, sm90a: configurations for medium M (64 < M <= 256 or so).
//
// Their kernels wait for the kernel before them, so they are launched with PDL
// (int8_scaled_mm_sm90.cuh); CUTLASS reads this before its first header.
#define CUTLASS_ENABLE_GDC_FOR_SM90
#include "gemm/int8_scaled_mm_sm90.cuh"

namespace qbench::int8_mm {

// 128x128 tiles, pingpong: two consumer warpgroups on alternate tiles, so one's epilogue
// overlaps the other's mainloop.
std::string sm90_128x128x128_c2x1_pingpong(const Problem& p) {
  return run_sm90_config<Sm90Config<128, 128, 128, 2, 1, Pingpong, PingpongEpi, Persistent, false>>(p);
}

// 64x128 tiles, pingpong: M in (64, 128] is exactly 2 M-tiles; the 2x1 cluster shares B.
std::string sm90_64x128x128_c2x1_pingpong(const Problem& p) {
  return run_sm90_config<Sm90Config<64, 128, 128, 2, 1, Pingpong, PingpongEpi, Persistent, false>>(p);
}

}  // namespace qbench::int8_mm
