// INT8 scaled GEMM, sm90a: configurations for small batches past decode (16 < M <= 64, and
// 64 < M <= 128 on weights up to N = 4096: see the dispatch table).
//
// One 64-row M tile holds up to 64 tokens, so the grid is (nearly) the N tiles alone, each CTA streaming
// its weight slice once with 256-deep K tiles (half the TMA and barrier round trips of 128).
// The plain warp-specialized kernel (one producer, one consumer warpgroup, one tile a CTA):
// with at most a few hundred tiles there is no epilogue for a persistent schedule to hide.
// Narrower N tiles put more SMs to work on smaller weights. (A 1x2 cluster multicasting the
// token tile was timed too, H200 2026-12-02: never the fastest, 2-13% behind 64x64x256.)
//
// Their kernels wait for the kernel before them, so they are launched with PDL
// (int8_scaled_mm_sm90.cuh); CUTLASS reads this before its first header.
#define CUTLASS_ENABLE_GDC_FOR_SM90
#include "gemm/int8_scaled_mm_sm90.cuh"

namespace qbench::int8_mm {

std::string sm90_64x64x256_c1x1_ws(const Problem& p) {
  return run_sm90_config<Sm90Config<64, 64, 256, 1, 1, WarpSpecialized, PingpongEpi, Persistent, false>>(p);
}

std::string sm90_64x48x256_c1x1_ws(const Problem& p) {
  return run_sm90_config<Sm90Config<64, 48, 256, 1, 1, WarpSpecialized, PingpongEpi, Persistent, false>>(p);
}

std::string sm90_64x32x256_c1x1_ws(const Problem& p) {
  return run_sm90_config<Sm90Config<64, 32, 256, 1, 1, WarpSpecialized, PingpongEpi, Persistent, false>>(p);
}

}  // namespace qbench::int8_mm
