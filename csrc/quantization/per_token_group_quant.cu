// The per_token_group_quant op: argument checks, the tensors' layout into the kernel's
// parameters, and the record of what it writes for the GEMM (core/pdl_writes.h). The kernel
// and why it is built the way it is: per_token_group_quant_kernel.cuh.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "core/pdl_writes.h"
#include "quantization/per_token_group_quant_kernel.cuh"
#include "quantization/quant_checks.h"

namespace qbench {
namespace {

template <typename Out>
cudaError_t launch(const at::Tensor& x, const group_quant::GroupQuantParams& p, cudaStream_t stream) {
  switch (x.scalar_type()) {
    case at::kBFloat16:
      return group_quant::launch<__nv_bfloat16, Out>(p, stream);
    case at::kHalf:
      return group_quant::launch<__half, Out>(p, stream);
    case at::kFloat:
      return group_quant::launch<float, Out>(p, stream);
    default:
      TORCH_CHECK_TYPE(false, "x must be bfloat16, float16 or float32, got ", x.scalar_type());
  }
}

void per_token_group_quant(const at::Tensor& x, at::Tensor& q, at::Tensor& s, int64_t group_size, double eps,
                           bool use_ue8m0) {
  check_group_quant_args(x, q, s, group_size, eps, group_quant::kMinElemsPerThread);
  const int64_t rows = x.size(0), cols = x.size(1);
  if (rows == 0 || cols / group_size == 0) return;

  const c10::cuda::CUDAGuard guard(x.device());
  const bool fp8 = q.scalar_type() == at::kFloat8_e4m3fn;
  const group_quant::GroupQuantParams p = group_quant::make_params(
      x.data_ptr(), x.stride(0), static_cast<int>(x.element_size()), q.data_ptr(), q.stride(0), s.data_ptr<float>(),
      s.stride(0), s.stride(1), rows, cols, static_cast<int>(group_size), static_cast<float>(eps), use_ue8m0, fp8);
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  note_pdl_writes(stream, {&q, &s});
  C10_CUDA_CHECK(fp8 ? launch<group_quant::Fp8Out>(x, p, stream) : launch<group_quant::Int8Out>(x, p, stream));
}

}  // namespace
}  // namespace qbench

TORCH_LIBRARY_IMPL(qbench_ext, CUDA, m) { m.impl("per_token_group_quant", &qbench::per_token_group_quant); }
