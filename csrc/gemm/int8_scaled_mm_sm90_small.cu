// INT8 scaled GEMM, sm90a: the configurations on CUTLASS's stream-K scheduler. Launched without
// PDL: the scheduler does not compile with CUTLASS_ENABLE_GDC_FOR_SM90 in CUTLASS 4.2 (its
// const is_last_tile passes a member by non-const reference), so these kernels do not wait.
//
// For small M (decode) they swap A and B. The kernel computes out^T (N, M) = b^T a^T: the
// weight's N fills the 128-row side of the tile and the few tokens the narrow N side (16 / 32 /
// 64). Decode GEMMs are bound by reading the weight, and N / 128 tiles alone would leave most
// of the 132 SMs idle, so these use the stream-K scheduler: it splits the K loop of the tiles
// over all SMs and reduces the int32 partial sums in a workspace. The K tile is 128, not 256:
// CUTLASS's stream-K gives each unit at least 8 K tiles, so with K = 4096 a 256-deep tile could
// only feed 64 units (SMs) from 32 output tiles, a 128-deep one 128.
#include "gemm/int8_scaled_mm_sm90.cuh"

namespace qbench::int8_mm {

std::string sm90_swap_128x16x128_c1x1_coop_sk(const Problem& p) {
  return run_sm90_config<Sm90Config<128, 16, 128, 1, 1, Cooperative, CooperativeEpi, StreamK, true>>(p);
}

std::string sm90_swap_128x32x128_c1x1_coop_sk(const Problem& p) {
  return run_sm90_config<Sm90Config<128, 32, 128, 1, 1, Cooperative, CooperativeEpi, StreamK, true>>(p);
}

std::string sm90_swap_128x64x128_c1x1_coop_sk(const Problem& p) {
  return run_sm90_config<Sm90Config<128, 64, 128, 1, 1, Cooperative, CooperativeEpi, StreamK, true>>(p);
}

// 128x128 tiles, cooperative with stream-K: for problems with fewer output tiles than SMs.
std::string sm90_128x128x128_c1x1_coop_sk(const Problem& p) {
  return run_sm90_config<Sm90Config<128, 128, 128, 1, 1, Cooperative, CooperativeEpi, StreamK, false>>(p);
}

}  // namespace qbench::int8_mm
