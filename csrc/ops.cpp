// Every op schema of qbench_ext, in one place. Kernels register their CUDA implementations
// next to the kernel (TORCH_LIBRARY_IMPL); fake (meta) implementations live in Python
// (qbench_ext/_ops.py), beside the wrappers that allocate outputs.
#include <torch/library.h>

#include "core/build_info.h"

TORCH_LIBRARY(qbench_ext, m) {
  // JSON describing how the loaded library was built (CUDA, archs, torch, CUTLASS, type).
  m.def("build_info() -> str", &qbench::build_info_json);

  // Launches an empty kernel: the benchmark's launch-overhead floor.
  m.def("empty_kernel(Tensor like) -> ()");

  // Per-token-group quantization of x (M, K) into q (M, K; fp8 e4m3fn or int8) and
  // fp32 scales s (M, K / group_size). s may be row-major (stride (G, 1)) or column-major
  // (stride (1, ld), ld >= M); the kernel follows s's strides.
  m.def(
      "per_token_group_quant(Tensor x, Tensor(a!) q, Tensor(b!) s, int group_size, "
      "float eps, bool use_ue8m0) -> ()");
}
