#pragma once
// The sm90a INT8 scaled GEMM kernel template (CUTLASS 3.x API: TMA, warp-specialized wgmma
// mainloop, TMA epilogue), and the launcher that runs one configuration of it.
//
// Included only by the int8_scaled_mm_sm90_<group>.cu files, each of which instantiates a few
// configurations (one translation unit per group, so the build parallelises).
//
// Epilogue (an epilogue visitor tree, EVT), all in fp32 and rounded once at the end:
//
//   D = scale_b * (scale_a * float(acc)) + float(bias)
//
// scale_a is per row m (a "column broadcast" in CUTLASS's terms: one value per row, repeated
// along N), scale_b per column n (a "row broadcast"). Whether a scale is a vector or a single
// value is a RUN-TIME property of the same kernel: CUTLASS 4.2's Sm90ColBroadcast /
// Sm90RowBroadcast accept a `bool` in place of the broadcast mode's stride (its
// IsDynamicBroadcast path): true walks the vector, false reads element 0 everywhere. The bias
// is optional at run time too: a null pointer makes the node produce its null_default, 0.
//
// Swap-AB configurations compute D^T = b^T a^T instead (the GEMM's M is our N, its N is our
// M), so that a small M lands on the tile's N side, which wgmma lets be as small as 8-16
// instead of 64. out (M, N) row-major is then D^T (N, M) column-major, and the roles of the
// broadcasts flip: scale_a becomes a row broadcast, scale_b and bias column broadcasts. The
// arithmetic order (acc * scale_a, then * scale_b + bias) is the same in both, so every
// configuration gives bit-identical results.
#include <cuda_runtime_api.h>

#include <limits>
#include <string>
#include <type_traits>

// CUTLASS 4.2 headers of other archs trip nvcc 13 warning 2908 (implicit capture of this).
#pragma nv_diag_suppress 2908
#include "cute/tensor.hpp"
#include "cutlass/cutlass.h"
#include "cutlass/epilogue/collective/collective_builder.hpp"
#include "cutlass/epilogue/fusion/sm90_visitor_compute_tma_warpspecialized.hpp"
#include "cutlass/epilogue/fusion/sm90_visitor_load_tma_warpspecialized.hpp"
#include "cutlass/epilogue/fusion/sm90_visitor_tma_warpspecialized.hpp"
#include "cutlass/gemm/collective/collective_builder.hpp"
#include "cutlass/gemm/device/gemm_universal_adapter.h"
#include "cutlass/gemm/dispatch_policy.hpp"
#include "cutlass/gemm/kernel/gemm_universal.hpp"
#include "cutlass/gemm/kernel/tile_scheduler.hpp"
#pragma nv_diag_default 2908
#include "gemm/int8_scaled_mm.h"

namespace qbench::int8_mm {

// One kernel configuration. Schedule: the mainloop kernel schedule (cooperative, pingpong, or
// the plain warp-specialized one, a CTA per tile); EpiSchedule must match it
// (TmaWarpSpecializedCooperative / TmaWarpSpecialized). Scheduler:
// cutlass::gemm::PersistentScheduler (for the plain kernel it only shapes the grid) or
// StreamKScheduler (cooperative only).
template <int TileM, int TileN, int TileK, int ClusterM, int ClusterN, class Schedule,
          class EpiSchedule, class Scheduler, bool SwapAB>
struct Sm90Config {
  using TileShape = cute::Shape<cute::Int<TileM>, cute::Int<TileN>, cute::Int<TileK>>;
  using ClusterShape = cute::Shape<cute::Int<ClusterM>, cute::Int<ClusterN>, cute::_1>;
  using KernelSchedule = Schedule;
  using EpilogueSchedule = EpiSchedule;
  using TileScheduler = Scheduler;
  static constexpr bool kSwapAB = SwapAB;
};

using Cooperative = cutlass::gemm::KernelTmaWarpSpecializedCooperative;
using CooperativeEpi = cutlass::epilogue::TmaWarpSpecializedCooperative;
using Pingpong = cutlass::gemm::KernelTmaWarpSpecializedPingpong;
using PingpongEpi = cutlass::epilogue::TmaWarpSpecialized;  // also the plain kernel's
using WarpSpecialized = cutlass::gemm::KernelTmaWarpSpecialized;
using Persistent = cutlass::gemm::PersistentScheduler;
using StreamK = cutlass::gemm::StreamKScheduler;

template <class Config, class ElementD>
struct Sm90Int8Gemm {
  using TileShape = typename Config::TileShape;
  using ClusterShape = typename Config::ClusterShape;
  static constexpr bool kSwapAB = Config::kSwapAB;

  using ElementAB = int8_t;
  using ElementAcc = int32_t;
  using ElementCompute = float;
  static constexpr int kAlignmentAB = 16;  // 128 bits of int8 (TMA)
  static constexpr int kAlignmentD = 8;    // 128 bits of bf16/fp16 (TMA)

  // GEMM operands as CUTLASS sees them: A (M', K) K-major, B (N', K) K-major, D (M', N').
  using LayoutA = cutlass::layout::RowMajor;
  using LayoutB = cutlass::layout::ColumnMajor;
  using LayoutD = std::conditional_t<kSwapAB, cutlass::layout::ColumnMajor, cutlass::layout::RowMajor>;

  static constexpr auto kRound = cutlass::FloatRoundStyle::round_to_nearest;
  // Broadcast along the GEMM's rows (one value per row m') or columns (one per column n').
  // A bool stride: vector (true) or one value for the whole matrix (false), chosen at run time.
  using PerRowScale = cutlass::epilogue::fusion::Sm90ColBroadcast<
      0, TileShape, float, ElementCompute, cute::Stride<bool, cute::_0, cute::_0>, 1>;
  using PerColScale = cutlass::epilogue::fusion::Sm90RowBroadcast<
      0, TileShape, float, ElementCompute, cute::Stride<cute::_0, bool, cute::_0>, 1>;
  using PerRowBias = cutlass::epilogue::fusion::Sm90ColBroadcast<
      0, TileShape, ElementD, ElementCompute, cute::Stride<cute::_1, cute::_0, cute::_0>, 1>;
  using PerColBias = cutlass::epilogue::fusion::Sm90RowBroadcast<
      0, TileShape, ElementD, ElementCompute, cute::Stride<cute::_0, cute::_1, cute::_0>, 1>;

  using ScaleA = std::conditional_t<kSwapAB, PerColScale, PerRowScale>;
  using ScaleB = std::conditional_t<kSwapAB, PerRowScale, PerColScale>;
  using Bias = std::conditional_t<kSwapAB, PerRowBias, PerColBias>;

  // D = scale_b * (scale_a * acc) + bias
  using ScaledAcc = cutlass::epilogue::fusion::Sm90EVT<
      cutlass::epilogue::fusion::Sm90Compute<cutlass::multiplies, ElementCompute, ElementCompute, kRound>,
      ScaleA, cutlass::epilogue::fusion::Sm90AccFetch>;
  using EpilogueEVT = cutlass::epilogue::fusion::Sm90EVT<
      cutlass::epilogue::fusion::Sm90Compute<cutlass::homogeneous_multiply_add, ElementD, ElementCompute, kRound>,
      ScaleB, ScaledAcc, Bias>;

  using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, ElementAcc, ElementCompute,
      void, LayoutD, kAlignmentD,  // no C operand
      ElementD, LayoutD, kAlignmentD, typename Config::EpilogueSchedule, EpilogueEVT>::CollectiveOp;

  using CollectiveMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, ElementAB, LayoutA, kAlignmentAB, ElementAB,
      LayoutB, kAlignmentAB, ElementAcc, TileShape, ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
          sizeof(typename CollectiveEpilogue::SharedStorage))>,
      typename Config::KernelSchedule>::CollectiveOp;

  using GemmKernel = cutlass::gemm::kernel::GemmUniversal<cute::Shape<int, int, int, int>, CollectiveMainloop,
                                                          CollectiveEpilogue, typename Config::TileScheduler>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<GemmKernel>;

  static constexpr bool kStreamK = std::is_same_v<typename Config::TileScheduler, StreamK>;
  // PDL (core/pdl.cuh), as our other kernels: the launch and prologue (barrier setup,
  // tensor-map prefetch) overlap the end of the kernel before. Only where the kernel waits
  // for that kernel before its first global access: where the translation unit defines
  // CUTLASS_ENABLE_GDC_FOR_SM90, which the stream-K scheduler does not compile with.
  // Whether a launch uses it is the dispatcher's choice (Problem::launch_with_pdl).
  static constexpr bool kLaunchWithPdl = !kStreamK;
#ifndef CUTLASS_ENABLE_GDC_FOR_SM90
  static_assert(!kLaunchWithPdl, "define CUTLASS_ENABLE_GDC_FOR_SM90 before including this header");
#endif

  static typename Gemm::Arguments make_arguments(const Problem& p) {
    using StrideA = typename GemmKernel::StrideA;
    using StrideB = typename GemmKernel::StrideB;
    using StrideC = typename GemmKernel::StrideC;
    using StrideD = typename GemmKernel::StrideD;

    // (maybe_unused: nvcc's device pass of this host-only code warns otherwise)
    [[maybe_unused]] const int8_t* a_ptr = kSwapAB ? p.b : p.a;
    [[maybe_unused]] const int8_t* b_ptr = kSwapAB ? p.a : p.b;
    StrideA stride_a = cute::make_stride(kSwapAB ? p.ldb : p.lda, cute::_1{}, int64_t(0));
    StrideB stride_b = cute::make_stride(kSwapAB ? p.lda : p.ldb, cute::_1{}, int64_t(0));
    StrideD stride_d;
    if constexpr (kSwapAB) {
      stride_d = cute::make_stride(cute::_1{}, p.ldo, int64_t(0));  // D' = out^T, (N, M) column-major
    } else {
      stride_d = cute::make_stride(p.ldo, cute::_1{}, int64_t(0));  // D = out, (M, N) row-major
    }
    StrideC stride_c = stride_d;

    [[maybe_unused]] const int gemm_m = kSwapAB ? p.n : p.m;
    [[maybe_unused]] const int gemm_n = kSwapAB ? p.m : p.n;

    const auto* bias = static_cast<const ElementD*>(p.bias);
    typename ScaleA::Arguments scale_a_args{p.scale_a, 0.0f, {}};
    typename ScaleB::Arguments scale_b_args{p.scale_b, 0.0f, {}};
    if constexpr (kSwapAB) {
      scale_a_args.dRow = cute::make_stride(cute::_0{}, p.scale_a_per_row, cute::_0{});
      scale_b_args.dCol = cute::make_stride(p.scale_b_per_col, cute::_0{}, cute::_0{});
    } else {
      scale_a_args.dCol = cute::make_stride(p.scale_a_per_row, cute::_0{}, cute::_0{});
      scale_b_args.dRow = cute::make_stride(cute::_0{}, p.scale_b_per_col, cute::_0{});
    }
    typename Bias::Arguments bias_args{bias, ElementD(0.0f), {}};

    typename Gemm::Arguments args{};
    args.mode = cutlass::gemm::GemmUniversalMode::kGemm;
    args.problem_shape = {gemm_m, gemm_n, p.k, 1};
    args.mainloop = {a_ptr, stride_a, b_ptr, stride_b};
    args.epilogue.thread = {
        scale_b_args,                      // ScaleB
        {scale_a_args, {}, {}},            // ScaleA * acc
        bias_args,                         // Bias
        {}};                               // multiply_add
    args.epilogue.ptr_C = nullptr;
    args.epilogue.dC = stride_c;
    args.epilogue.ptr_D = static_cast<ElementD*>(p.out);
    args.epilogue.dD = stride_d;
    args.hw_info.device_id = p.device;
    args.hw_info.sm_count = p.sm_count;
    using RasterOrderOptions = typename GemmKernel::TileScheduler::RasterOrderOptions;
    args.scheduler.max_swizzle_size = p.max_swizzle;
    args.scheduler.raster_order = static_cast<RasterOrderOptions>(p.raster_order);
    if constexpr (kStreamK) {
      // Partial sums are int32, so the (faster) unordered reduction is still exact and
      // deterministic.
      args.scheduler.reduction_mode = GemmKernel::TileScheduler::ReductionMode::Nondeterministic;
      args.scheduler.decomposition_mode = GemmKernel::TileScheduler::DecompositionMode::Heuristic;
    }
    return args;
  }

  // A TMA box that reaches past the activation's last row (its rows past M zero-filled) is slow
  // to arrive: with M = 257, N = K = 8192, the 128x128 stream-K tiles took 70 us against 45 at
  // M = 384 with the same tiles (whose extra rows were in bounds, zero or random alike), and
  // ncu showed the same instructions and DRAM traffic, the consumers waiting on the TMA
  // barriers (H200, 2026-12-04). Where the activation's memory holds the rows up to the tile
  // boundary, the load descriptor is built for them instead: the last tile's box lies in bounds,
  // the rows past M give accumulators that the epilogue (whose store and per-row scale still
  // stop at M) never writes.
  static void widen_activation_box(typename GemmKernel::Params& params, const typename Gemm::Arguments& args,
                                   const Problem& p, void* workspace) {
    constexpr int64_t kTileRows = cute::size<kSwapAB ? 1 : 0>(TileShape{});  // the tile's extent along M
    const int64_t rows = (int64_t(p.m) + kTileRows - 1) / kTileRows * kTileRows;
    if (rows == p.m || rows > p.a_rows_readable || rows > std::numeric_limits<int>::max()) return;
    auto shape = args.problem_shape;
    cute::get<kSwapAB ? 1 : 0>(shape) = static_cast<int>(rows);
    const auto wide = CollectiveMainloop::to_underlying_arguments(shape, args.mainloop, workspace);
    if constexpr (kSwapAB) {
      params.mainloop.tma_load_b = wide.tma_load_b;
    } else {
      params.mainloop.tma_load_a = wide.tma_load_a;
    }
  }

  static std::string run(const Problem& p) {
    typename Gemm::Arguments args = make_arguments(p);
    Gemm gemm;
    cutlass::Status status = gemm.can_implement(args);
    if (status != cutlass::Status::kSuccess) {
      return std::string("CUTLASS cannot run this problem with this configuration (can_implement: ") +
             cutlassGetStatusString(status) + ")";
    }
    const size_t workspace_bytes = Gemm::get_workspace_size(args);
    void* workspace = nullptr;
    if (workspace_bytes > 0) {
      workspace = p.alloc_workspace(p.alloc_ctx, workspace_bytes);
      if (workspace == nullptr) return "failed to allocate the CUTLASS workspace";
    }
    status = gemm.initialize(args, workspace, p.stream);
    if (status != cutlass::Status::kSuccess) {
      return std::string("CUTLASS initialize failed: ") + cutlassGetStatusString(status) + " (" +
             cudaGetErrorString(cudaGetLastError()) + ")";
    }
    typename GemmKernel::Params params = gemm.params();
    widen_activation_box(params, args, p, workspace);
    status = Gemm::run(params, p.stream, /*cuda_adapter=*/nullptr, kLaunchWithPdl && p.launch_with_pdl);
    if (status != cutlass::Status::kSuccess) {
      return std::string("CUTLASS kernel launch failed: ") + cutlassGetStatusString(status) + " (" +
             cudaGetErrorString(cudaGetLastError()) + ")";
    }
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return std::string("CUDA error after the GEMM launch: ") + cudaGetErrorString(err);
    return {};
  }
};

// The launcher of one configuration: picks the bf16 or fp16 instantiation.
template <class Config>
std::string run_sm90_config(const Problem& p) {
  if (p.out_fp16) return Sm90Int8Gemm<Config, cutlass::half_t>::run(p);
  return Sm90Int8Gemm<Config, cutlass::bfloat16_t>::run(p);
}

}  // namespace qbench::int8_mm
