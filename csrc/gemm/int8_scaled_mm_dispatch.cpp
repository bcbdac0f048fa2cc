// INT8 scaled GEMM: the torch op, its argument checks, and THE dispatch table (which kernel
// configuration runs which problem shape). The kernels are in int8_scaled_mm_sm90_*.cu (CUTLASS)
// and int8_scaled_mm_decode.cu (hand-written, small M).
//
//   qbench_ext::int8_scaled_mm(out, a, b, scale_a, scale_b, bias)   -- the public op
//   qbench_ext::int8_scaled_mm_config(out, a, b, scale_a, scale_b, bias, config) -- forces one
//       configuration (by index into int8_scaled_mm_configs()); for tuning and tests
//   qbench_ext::int8_scaled_mm_configs() -> str[]                     -- the configuration names
//   qbench_ext::int8_scaled_mm_pick_config(M, N, K) -> int            -- what the table picks
#include <ATen/Functions.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/pdl_writes.h"
#include "gemm/int8_scaled_mm.h"

namespace qbench::int8_mm {
namespace {

// ------------------------------------------------------------------------------------------
// Configurations. The index is the config id of int8_scaled_mm_config; append new ones at the
// end so recorded ids stay valid.
struct ConfigEntry {
  const char* name;
  Launcher launch;
  // The tile's extent along M, the rows of its TMA box of the activation (0: no TMA), and
  // whether the activation is the second operand (swap A/B): for copy_to_whole_tiles.
  int activation_rows;
  bool swap_ab = false;
};

constexpr ConfigEntry kConfigs[] = {
    /* 0 */ {"sm90_128x256x128_c2x1_coop", &sm90_128x256x128_c2x1_coop, 128},
    /* 1 */ {"sm90_256x128x128_c2x1_coop", &sm90_256x128x128_c2x1_coop, 256},
    /* 2 */ {"sm90_128x128x128_c2x1_pingpong", &sm90_128x128x128_c2x1_pingpong, 128},
    /* 3 */ {"sm90_64x128x128_c2x1_pingpong", &sm90_64x128x128_c2x1_pingpong, 64},
    /* 4 */ {"sm90_128x128x128_c1x1_coop_sk", &sm90_128x128x128_c1x1_coop_sk, 128},
    /* 5 */ {"sm90_swap_128x16x128_c1x1_coop_sk", &sm90_swap_128x16x128_c1x1_coop_sk, 16, true},
    /* 6 */ {"sm90_swap_128x32x128_c1x1_coop_sk", &sm90_swap_128x32x128_c1x1_coop_sk, 32, true},
    /* 7 */ {"sm90_swap_128x64x128_c1x1_coop_sk", &sm90_swap_128x64x128_c1x1_coop_sk, 64, true},
    /* 8 */ {"sm90_decode_mma_16x16_ksplit8", &sm90_decode_mma_16x16_ksplit8, 0},
    /* 9 */ {"sm90_64x64x256_c1x1_ws", &sm90_64x64x256_c1x1_ws, 64},
    /* 10 */ {"sm90_64x32x256_c1x1_ws", &sm90_64x32x256_c1x1_ws, 64},
    /* 11 */ {"sm90_64x48x256_c1x1_ws", &sm90_64x48x256_c1x1_ws, 64},
};
constexpr int kNumConfigs = static_cast<int>(sizeof(kConfigs) / sizeof(kConfigs[0]));

// ------------------------------------------------------------------------------------------
// The dispatch table: the first rule with M <= max_m (and N >= min_n, K <= max_k, and M's
// count of 128-row blocks as the rule asks) wins.
//
// Chosen from scripts/gpu_check_gemm.py on an H200 (every config timed on the Llama-3.1-8B
// TP1 shapes, N = 4096, 6144, 28672 at K = 4096 and N = 4096 at K = 14336; 2026-11-22, and
// 2026-12-02 for the ws configurations, M <= 256 and the tile order at large M). Small
// problems are decided by how many SMs their tiles occupy:
//  - M <= 16 (decode): the hand-written mma.sync kernel (int8_scaled_mm_decode.cu), which
//    streams the weight with no workspace or reduction pass (N = K = 4096: 6.0 us, vLLM 8.4;
//    at N = 28672 within 3% of the swapped 128x16 stream-K tiles, either way).
//  - 16 < M <= 64: one 64-row tile holds every token; narrower N tiles on narrower weights, so
//    that Llama-3.1-8B's N = 4096 and 6144 make 128 CTAs for the 132 SMs: 64x32x256 up to
//    N = 4096 (7.2 us at N = K = 4096, vLLM 7.8), 64x48x256 up to N = 6144 (where 64x64 makes
//    96; 2026-12-03: 8.9 us, 64x64 9.6, vLLM 8.9), 64x64x256 above, and on wide weights the
//    swapped 128x64 stream-K tiles (N = 28672: 33.0 us, vLLM 37.5). Up to M = 32 the swapped
//    128x32 tiles from N = 14336 (M = 17-32, two runs on 2026-12-04: N = 28672 0.9-2.6% faster
//    than 128x64 at all 8 points, e.g. M = 24: 32.1 us against 32.9; N = 14336 level with
//    64x64x256 with whole tiles, 17.8-19.4 against 18.5-19.0, and 18.7-19.4 against 23.1-24.9
//    with a compact activation, whose 32-row boxes reach less far past it), and on the widest
//    weights the swapped 128x16 tiles up to M = 32 (N = 57344, K = 8192: 112.6-114.8 against
//    117.6-119.1 for 128x32 and 119.4-120.8 for 128x64, vLLM 117.0-118.6; N = 59136:
//    116.2-117.7 against 122.6-124.4 for 128x64) and 128x32 up to M = 64 (N = 57344:
//    116.3-119.2 against 121.1-123.1 for 128x64), from N = 49152, between the widths measured
//    (28672, where 128x64 still won at M = 40-64, and 57344), and up to K = 8192: at
//    N = 106496, K = 16384 the 128x16 tiles took 408.9-428.6 us against 400.0-402.2 for 128x32
//    at M = 17-32, and 128x32 was level with 128x64 at M = 40-64 (416-428 against 417-419).
//    (docs/measurements/h200-2026-12-04-wide-small-m/.)
//  - 64 < M <= 128: 64x64x256 tiles up to N = 4096 (N = 4096, K = 14336: 19.9 us against
//    25.4 for 64x128 pingpong), 64x128 pingpong tiles above.
//  - 128 < M <= 256: the swapped 128x64 stream-K tiles up to N = 4096 (K = 14336: 26.0 us,
//    64x128 pingpong 27.8, vLLM 38.9), 128x128 pingpong above (N = 6144: 15.0 us, 64x128
//    pingpong 16.5).
//  - M > 256: 128x128 pingpong tiles, in CUTLASS's default tile order; on wide weights
//    (N >= 16384) at M > 4096, walked in swizzles of 4 along M, which keeps more of A and B
//    in L2. Sustained, these GEMMs run the GPU at its power limit (700 W, SM clock 1.35-1.5
//    GHz), and there the 128x256 cooperative tiles lose. Timed on 2026-12-02 with the
//    candidates' graph replays interleaved (two runs each, us): M = 16384, N = 28672:
//    swizzle 4 along M 2923-2941, default order 3057-3087, 128x256 cooperative tiles with
//    swizzle 8 along N (the earlier pick here) 3294-3308, vLLM 3035-3053; M = 8192: 1421-1440,
//    1428-1449, 1600-1633, vLLM 1420-1434. At N <= 6144 and at K = 14336 (M = 16384) every
//    128x128 order was within 1.5% of the others and of vLLM.
//  - But the pingpong tiles come in clusters of two along M, so an odd count of 128-row
//    blocks gets a padding block row whose CTAs run the whole main loop on rows past M; up to
//    17 blocks (M <= 2176) that row is a large part of the work, and the 128x128 stream-K
//    tiles (no cluster, no padding) are faster: 1.22x in geometric mean over the odd counts
//    of 34 values of M from 257 to 12288 timed on 2026-12-04
//    (docs/measurements/h200-2026-12-04-odd-m/), e.g. M = 832: N = 28672 154 us against 220,
//    N = 4096 K = 14336 78 against 108; at even counts the pingpong tiles mostly win, by up
//    to 22%. A swizzle of 4 pads the blocks to a multiple of 8 the same way (M = 4097,
//    N = 28672: 955 us against 722 in the default order, vLLM 730), so it applies only where
//    M needs no padding (a multiple of 1024). Those timings had compact activations; with the
//    whole last tiles that scaled_int8_quant's output allows (widen_activation_box in
//    int8_scaled_mm_sm90.cuh), the stream-K tiles stayed the best at odd counts, or within
//    2%, at 17 of 21 points from M = 257 to 2049 (docs/measurements/h200-2026-12-04-partial-tiles/).
// Forcing a configuration (int8_scaled_mm_config) uses CUTLASS's default tile order.
enum class Raster : int { kHeuristic = 0, kAlongM = 1, kAlongN = 2 };  // CUTLASS's RasterOrderOptions

// Which counts of 128-row blocks of M a rule applies to (see the padding note above).
enum class Blocks { kAny, kOdd, kMultipleOf8 };

struct Rule {
  int64_t max_m;
  int64_t min_n;
  int config;
  int max_swizzle = 1;
  Raster raster = Raster::kHeuristic;
  Blocks blocks = Blocks::kAny;
  int64_t max_k = std::numeric_limits<int64_t>::max();
};

struct Pick {
  int config;
  int max_swizzle;
  Raster raster;
};

constexpr int64_t kAnyM = std::numeric_limits<int64_t>::max();
constexpr int64_t kWidestMaxK = 8192;  // see the widest weights' rules above

constexpr Rule kRules[] = {
    {16, 0, 8},                             // sm90_decode_mma_16x16_ksplit8
    {32, 49152, 5, 1, Raster::kHeuristic, Blocks::kAny, kWidestMaxK},  // sm90_swap_128x16x128_c1x1_coop_sk
    {32, 14336, 6},                                                     // sm90_swap_128x32x128_c1x1_coop_sk
    {64, 49152, 6, 1, Raster::kHeuristic, Blocks::kAny, kWidestMaxK},  // sm90_swap_128x32x128_c1x1_coop_sk
    {64, 16384, 7},                         // sm90_swap_128x64x128_c1x1_coop_sk
    {64, 6145, 9},                          // sm90_64x64x256_c1x1_ws
    {64, 4097, 11},                         // sm90_64x48x256_c1x1_ws
    {64, 0, 10},                            // sm90_64x32x256_c1x1_ws
    {128, 4097, 3},                         // sm90_64x128x128_c2x1_pingpong
    {128, 0, 9},                            // sm90_64x64x256_c1x1_ws
    {256, 4097, 2},                         // sm90_128x128x128_c2x1_pingpong
    {256, 0, 7},                            // sm90_swap_128x64x128_c1x1_coop_sk
    {2176, 0, 4, 1, Raster::kHeuristic, Blocks::kOdd},  // sm90_128x128x128_c1x1_coop_sk
    {4096, 0, 2},                           // sm90_128x128x128_c2x1_pingpong
    {kAnyM, 16384, 2, 4, Raster::kAlongM, Blocks::kMultipleOf8},  // sm90_128x128x128_c2x1_pingpong
    {kAnyM, 0, 2},                          // sm90_128x128x128_c2x1_pingpong
};

// The CUTLASS configurations launch with PDL up to this M. PDL hides the launch and prologue
// behind the kernel before, worth 2-3% at M = 1024 (N = 4096: 23.3-23.4 us against 24.1-24.2
// plain, vLLM 24.1) and more below; above, it cost 4-7% at M = 2048 on three of the four
// Llama-3.1-8B shapes (N = 4096: 46.6-46.9 us against 44.5-44.6 plain, vLLM 44.7-44.9) and
// 1.5-2.5% at M = 4096, N = 6144, with the same 128x128 pingpong kernel as vLLM's. H200,
// 2026-12-03, two runs each, alternated (docs/measurements/h200-2026-12-03-cutlass-pdl-by-m/).
constexpr int64_t kMaxPdlM = 1024;

bool blocks_match(Blocks blocks, int64_t m) {
  const int64_t count = (m + 127) / 128;
  switch (blocks) {
    case Blocks::kOdd:
      return count % 2 == 1;
    case Blocks::kMultipleOf8:
      return count % 8 == 0;
    case Blocks::kAny:
      break;
  }
  return true;
}

Pick pick(int64_t m, int64_t n, int64_t k) {
  for (const Rule& r : kRules) {
    if (m <= r.max_m && n >= r.min_n && k <= r.max_k && blocks_match(r.blocks, m)) {
      return {r.config, r.max_swizzle, r.raster};
    }
  }
  return {2, 1, Raster::kHeuristic};
}

// ------------------------------------------------------------------------------------------

// A compact activation (its memory ends at row M) makes the TMA loads of its last tile reach
// past the tensor, and those arrive late: the more of the box lies outside, the later. Copying
// it into memory of whole tiles first costs a kernel (about 1.5 us in a graph) and 2 M K bytes.
// Timed on an H200 (scripts/compact_activation_probe.py, Llama-3.1-8B's four shapes, 14 values
// of M from 17 to 4097; docs/measurements/h200-2026-12-04-compact-copy/), the copy was faster
// at every point where less than half of the last box lay inside and M K <= 2^24 (e.g. M = 257,
// N = 28672: 76.1 us against 117.8; M = 65, K = 14336: 21.3 against 36.9), but for the swapped
// tiles at M = 200 (8 of 64 rows inside: 2-6% slower; at M = 129, 1 of 64: 24-45% faster).
// Where half or more lay inside it went either way (0.83-1.26x), and at M = 4097 it lost 2-9%.
constexpr int64_t kMaxCopiedActivation = int64_t(1) << 24;  // M K, bytes
constexpr int64_t kWholeTileRows = 256;  // a multiple of every activation_rows; gemm.whole_tile_rows in Python

bool copy_to_whole_tiles(const ConfigEntry& c, int64_t m, int64_t k, int64_t rows_readable) {
  if (c.activation_rows == 0 || m * k > kMaxCopiedActivation) return false;
  const int64_t inside = m % c.activation_rows;  // rows of the last box inside the activation
  if (inside == 0 || rows_readable >= m - inside + c.activation_rows) return false;
  return inside * (c.swap_ab ? 10 : 2) < c.activation_rows;
}

// Rows of a's memory from its first row on that the kernels may read (>= M).
int64_t readable_rows(const at::Tensor& a) {
  const int64_t M = a.size(0), K = a.size(1);
  if (M == 1) return 1;
  const int64_t bytes_from_start = static_cast<int64_t>(a.storage().nbytes()) - a.storage_offset();
  return bytes_from_start >= K ? std::max(M, (bytes_from_start - K) / a.stride(0) + 1) : M;
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

void check_args(const at::Tensor& out, const at::Tensor& a, const at::Tensor& b, const at::Tensor& scale_a,
                const at::Tensor& scale_b, const std::optional<at::Tensor>& bias) {
  TORCH_CHECK_VALUE(a.is_cuda(), "int8_scaled_mm: a must be a CUDA tensor, got one on ", a.device());
  const auto dev = a.device();
  TORCH_CHECK_VALUE(out.device() == dev && b.device() == dev && scale_a.device() == dev && scale_b.device() == dev &&
                        (!bias.has_value() || bias->device() == dev),
                    "int8_scaled_mm: out, a, b, scale_a, scale_b and bias must be on one CUDA device");
  TORCH_CHECK_TYPE(a.scalar_type() == at::kChar, "int8_scaled_mm: a must be int8, got ", a.scalar_type());
  TORCH_CHECK_TYPE(b.scalar_type() == at::kChar, "int8_scaled_mm: b must be int8, got ", b.scalar_type());
  TORCH_CHECK_TYPE(out.scalar_type() == at::kBFloat16 || out.scalar_type() == at::kHalf,
                   "int8_scaled_mm: out must be bfloat16 or float16, got ", out.scalar_type());
  TORCH_CHECK_TYPE(scale_a.scalar_type() == at::kFloat, "int8_scaled_mm: scale_a must be float32, got ",
                   scale_a.scalar_type());
  TORCH_CHECK_TYPE(scale_b.scalar_type() == at::kFloat, "int8_scaled_mm: scale_b must be float32, got ",
                   scale_b.scalar_type());
  TORCH_CHECK_VALUE(a.dim() == 2 && b.dim() == 2 && out.dim() == 2, "int8_scaled_mm: a, b and out must be 2-D, got ",
                    a.dim(), "-D, ", b.dim(), "-D, ", out.dim(), "-D");
  const int64_t M = a.size(0), K = a.size(1), N = b.size(1);
  TORCH_CHECK_VALUE(b.size(0) == K, "int8_scaled_mm: a (", a.sizes(), ") and b (", b.sizes(),
                    ") have different K");
  TORCH_CHECK_VALUE(out.size(0) == M && out.size(1) == N, "int8_scaled_mm: out must have shape (", M, ", ", N,
                    "), got ", out.sizes());
  TORCH_CHECK_VALUE(K % 16 == 0 && N % 16 == 0, "int8_scaled_mm: K and N must be multiples of 16, got K = ", K,
                    ", N = ", N);
  constexpr int64_t kMaxDim = std::numeric_limits<int32_t>::max();
  TORCH_CHECK_VALUE(M <= kMaxDim && N <= kMaxDim && K <= kMaxDim, "int8_scaled_mm: dimensions must be < 2^31");
  TORCH_CHECK_VALUE(scale_a.numel() == 1 || scale_a.numel() == M,
                    "int8_scaled_mm: scale_a must have 1 (per-tensor) or M = ", M, " (per-token) elements, got ",
                    scale_a.numel());
  TORCH_CHECK_VALUE(scale_b.numel() == 1 || scale_b.numel() == N,
                    "int8_scaled_mm: scale_b must have 1 (per-tensor) or N = ", N, " (per-channel) elements, got ",
                    scale_b.numel());
  TORCH_CHECK_VALUE(scale_a.is_contiguous() && scale_b.is_contiguous(),
                    "int8_scaled_mm: scale_a and scale_b must be contiguous");
  if (bias.has_value()) {
    TORCH_CHECK_TYPE(bias->scalar_type() == out.scalar_type(), "int8_scaled_mm: bias must have out's dtype (",
                     out.scalar_type(), "), got ", bias->scalar_type());
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == N && bias->is_contiguous(),
                      "int8_scaled_mm: bias must be a contiguous (N,) = (", N, ",) tensor, got shape ",
                      bias->sizes(), " strides ", bias->strides());
  }
  TORCH_CHECK_VALUE(out.is_contiguous(), "int8_scaled_mm: out must be contiguous (row-major)");
  if (M == 0 || N == 0 || K == 0) return;
  // Layouts for TMA: 16-byte aligned base addresses and leading dimensions.
  TORCH_CHECK_VALUE(a.stride(1) == 1, "int8_scaled_mm: a must be row-major (a.stride(1) == 1), got strides ",
                    a.strides());
  TORCH_CHECK_VALUE(b.stride(0) == 1,
                    "int8_scaled_mm: b must be column-major (b.stride(0) == 1, e.g. w.t() of a contiguous (N, K) "
                    "weight), got strides ",
                    b.strides());
  TORCH_CHECK_VALUE(M == 1 || (a.stride(0) >= K && a.stride(0) % 16 == 0),
                    "int8_scaled_mm: a's row stride must be a multiple of 16 and >= K, got ", a.stride(0));
  TORCH_CHECK_VALUE(b.stride(1) >= K && b.stride(1) % 16 == 0,
                    "int8_scaled_mm: b's column stride must be a multiple of 16 and >= K, got ", b.stride(1));
  TORCH_CHECK_VALUE(aligned16(a.data_ptr()) && aligned16(b.data_ptr()) && aligned16(out.data_ptr()),
                    "int8_scaled_mm: a, b and out must be 16-byte aligned");
}

struct WorkspaceCtx {
  at::Device device;
  at::Tensor buffer;
};

void* alloc_workspace(void* ctx, size_t bytes) {
  auto* w = static_cast<WorkspaceCtx*>(ctx);
  // From torch's caching allocator, on the current stream (the one the GEMM runs on); freed
  // when the op returns, which is stream-ordered and so safe.
  w->buffer = at::empty({static_cast<int64_t>(bytes)}, at::TensorOptions().dtype(at::kByte).device(w->device));
  return w->buffer.data_ptr();
}

bool built_for_sm90a() { return std::string(QBENCH_CUDA_ARCHS).find("90a") != std::string::npos; }

void run(at::Tensor& out, const at::Tensor& a, const at::Tensor& b, const at::Tensor& scale_a,
         const at::Tensor& scale_b, const std::optional<at::Tensor>& bias, int64_t config) {
  check_args(out, a, b, scale_a, scale_b, bias);
  const int64_t M = a.size(0), K = a.size(1), N = b.size(1);
  if (M == 0 || N == 0) return;
  const c10::cuda::CUDAGuard guard(a.device());
  if (K == 0) {  // an empty sum: out = bias (or 0)
    if (bias.has_value()) {
      out.copy_(bias->unsqueeze(0).expand({M, N}));
    } else {
      out.zero_();
    }
    return;
  }
  const cudaDeviceProp* prop = at::cuda::getCurrentDeviceProperties();
  TORCH_CHECK(prop->major == 9, "int8_scaled_mm: the CUTLASS kernels need an sm90 GPU (H100/H200), this is sm",
              prop->major, prop->minor);
  TORCH_CHECK(built_for_sm90a(), "int8_scaled_mm: qbench_ext was built without sm_90a (QBENCH_CUDA_ARCHS=",
              QBENCH_CUDA_ARCHS, ")");
  const bool from_table = config < 0;
  Pick chosen{static_cast<int>(config), 1, Raster::kHeuristic};
  if (from_table) chosen = pick(M, N, K);
  config = chosen.config;
  TORCH_CHECK_VALUE(config < kNumConfigs, "int8_scaled_mm: config must be in [0, ", kNumConfigs, "), got ", config);

  // A forced configuration runs on a as given, so that tuning times the kernel alone.
  int64_t rows_readable = readable_rows(a);
  // The caching allocator reuses `whole` after the op only in stream order, after the GEMM.
  at::Tensor whole;
  if (from_table && copy_to_whole_tiles(kConfigs[config], M, K, rows_readable)) {
    rows_readable = (M + kWholeTileRows - 1) / kWholeTileRows * kWholeTileRows;
    whole = at::empty({rows_readable, K}, a.options()).narrow(0, 0, M);
    whole.copy_(a);
  }
  const at::Tensor& act = whole.defined() ? whole : a;

  WorkspaceCtx ws{a.device(), {}};
  Problem p;
  p.m = static_cast<int>(M);
  p.n = static_cast<int>(N);
  p.k = static_cast<int>(K);
  p.a = static_cast<const int8_t*>(act.data_ptr());
  p.lda = M == 1 ? K : act.stride(0);
  p.a_rows_readable = rows_readable;
  p.b = static_cast<const int8_t*>(b.data_ptr());
  p.ldb = b.stride(1);
  p.out = out.data_ptr();
  p.ldo = N;
  p.out_fp16 = out.scalar_type() == at::kHalf;
  p.scale_a = scale_a.data_ptr<float>();
  p.scale_a_per_row = scale_a.numel() != 1;
  p.scale_b = scale_b.data_ptr<float>();
  p.scale_b_per_col = scale_b.numel() != 1;
  p.bias = bias.has_value() ? bias->data_ptr() : nullptr;
  p.device = a.get_device();
  p.sm_count = prop->multiProcessorCount;
  p.stream = at::cuda::getCurrentCUDAStream(a.get_device()).stream();
  p.alloc_workspace = &alloc_workspace;
  p.alloc_ctx = &ws;
  p.max_swizzle = chosen.max_swizzle;
  p.raster_order = static_cast<int>(chosen.raster);
  p.launch_with_pdl = M <= kMaxPdlM;
  // The decode kernel may read b before the previous kernel has completed, unless that kernel
  // is one of our PDL kernels writing it (core/pdl_writes.h). Most launches are themselves one,
  // writing out; noting out for those launched plainly too (the stream-K configurations,
  // int8_scaled_mm_sm90_small.cu, and every CUTLASS one above kMaxPdlM) only makes the next
  // early read more careful.
  p.b_ready_before_launch = !overlaps_pdl_writes(p.stream, b);
  note_pdl_writes(p.stream, {&out});

  const std::string err = kConfigs[config].launch(p);
  TORCH_CHECK(err.empty(), "int8_scaled_mm (", kConfigs[config].name, ", M=", M, " N=", N, " K=", K, "): ", err);
}

void int8_scaled_mm(at::Tensor& out, const at::Tensor& a, const at::Tensor& b, const at::Tensor& scale_a,
                    const at::Tensor& scale_b, const std::optional<at::Tensor>& bias) {
  run(out, a, b, scale_a, scale_b, bias, -1);
}

void int8_scaled_mm_config(at::Tensor& out, const at::Tensor& a, const at::Tensor& b, const at::Tensor& scale_a,
                           const at::Tensor& scale_b, const std::optional<at::Tensor>& bias, int64_t config) {
  TORCH_CHECK_VALUE(config >= 0 && config < kNumConfigs, "int8_scaled_mm_config: config must be in [0, ",
                    kNumConfigs, "), got ", config);
  run(out, a, b, scale_a, scale_b, bias, config);
}

std::vector<std::string> int8_scaled_mm_configs() {
  std::vector<std::string> names;
  for (const ConfigEntry& c : kConfigs) names.emplace_back(c.name);
  return names;
}

int64_t int8_scaled_mm_pick_config(int64_t m, int64_t n, int64_t k) { return pick(m, n, k).config; }

bool int8_scaled_mm_copies_activation(int64_t m, int64_t n, int64_t k, int64_t rows_readable) {
  TORCH_CHECK_VALUE(m > 0 && n > 0 && k > 0 && rows_readable >= m,
                    "int8_scaled_mm_copies_activation: needs M, N, K > 0 and rows_readable >= M");
  return copy_to_whole_tiles(kConfigs[pick(m, n, k).config], m, k, rows_readable);
}

}  // namespace
}  // namespace qbench::int8_mm

// Internal ops of the GEMM (tuning, tests): declared here rather than in ops.cpp.
TORCH_LIBRARY_FRAGMENT(qbench_ext, m) {
  m.def(
      "int8_scaled_mm_config(Tensor(a!) out, Tensor a, Tensor b, Tensor scale_a, Tensor scale_b, "
      "Tensor? bias, int config) -> ()");
  m.def("int8_scaled_mm_configs() -> str[]", &qbench::int8_mm::int8_scaled_mm_configs);
  m.def("int8_scaled_mm_pick_config(int m, int n, int k) -> int", &qbench::int8_mm::int8_scaled_mm_pick_config);
  m.def("int8_scaled_mm_copies_activation(int m, int n, int k, int rows_readable) -> bool",
        &qbench::int8_mm::int8_scaled_mm_copies_activation);
}

TORCH_LIBRARY_IMPL(qbench_ext, CUDA, m) {
  m.impl("int8_scaled_mm", &qbench::int8_mm::int8_scaled_mm);
  m.impl("int8_scaled_mm_config", &qbench::int8_mm::int8_scaled_mm_config);
}
