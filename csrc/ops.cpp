// Every op schema of qbench_ext, in one place. Kernels register their CUDA implementations
// next to the kernel (TORCH_LIBRARY_IMPL); fake (meta) implementations live in Python
// (qbench_ext/_ops.py), beside the wrappers that allocate outputs.
#include <torch/library.h>

TORCH_LIBRARY(qbench_ext, m) {
  // Launches an empty kernel: the benchmark's launch-overhead floor.
  m.def("empty_kernel(Tensor like) -> ()");

  // Per-token-group quantization of x (M, K) into q (M, K; fp8 e4m3fn or int8) and
  // fp32 scales s (M, K / group_size). s may be row-major (stride (G, 1)) or column-major
  // (stride (1, ld), ld >= M); the kernel follows s's strides.
  m.def(
      "per_token_group_quant(Tensor x, Tensor(a!) q, Tensor(b!) s, int group_size, "
      "float eps, bool use_ue8m0) -> ()");

  // out (M, N) = (scale_a * a) @ (scale_b * b) + bias, int32 accumulation, scales in fp32.
  // a int8 (M, K) row-major; b int8 (K, N) column-major; scale_a fp32 of 1 or M elements;
  // scale_b fp32 of 1 or N elements; bias (N,) in out's dtype; out bf16/fp16 (M, N).
  m.def(
      "int8_scaled_mm(Tensor(a!) out, Tensor a, Tensor b, Tensor scale_a, Tensor scale_b, "
      "Tensor? bias) -> ()");

  // Dynamic per-token INT8 quantization of x (M, K): writes q (M, K) int8 and scale (M, 1);
  // with azp given (M, 1) int32, asymmetric (zero points), else symmetric.
  m.def(
      "dynamic_scaled_int8_quant(Tensor(a!) q, Tensor x, Tensor(b!) scale, Tensor(c!)? azp) "
      "-> ()");

  // Static INT8 quantization of x with a given per-tensor scale (and optional zero point).
  m.def("static_scaled_int8_quant(Tensor(a!) q, Tensor x, Tensor scale, Tensor? azp) -> ()");
}
