#pragma once
// Argument checks of the quantization ops, repeated in C++ so that a direct
// torch.ops.qbench_ext call with bad arguments raises instead of reading out of bounds. The
// Python wrappers check the same things first, with friendlier messages.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace qbench {

inline void check_group_quant_args(const at::Tensor& x, const at::Tensor& q, const at::Tensor& s,
                                   int64_t group_size, double eps, int elems_per_thread) {
  TORCH_CHECK_VALUE(x.is_cuda() && q.device() == x.device() && s.device() == x.device(),
                    "x, q and s must be on one CUDA device, got ", x.device(), ", ", q.device(), ", ", s.device());
  TORCH_CHECK_VALUE(x.dim() == 2 && x.stride(1) == 1, "x must be 2-D with a contiguous last dim");
  TORCH_CHECK_TYPE(x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kHalf || x.scalar_type() == at::kFloat,
                   "x must be bfloat16, float16 or float32, got ", x.scalar_type());
  TORCH_CHECK_TYPE(q.scalar_type() == at::kFloat8_e4m3fn || q.scalar_type() == at::kChar,
                   "q must be float8_e4m3fn or int8, got ", q.scalar_type());
  TORCH_CHECK_TYPE(s.scalar_type() == at::kFloat, "s must be float32, got ", s.scalar_type());
  const int64_t lanes = group_size / elems_per_thread;
  TORCH_CHECK_VALUE(group_size % elems_per_thread == 0 && lanes >= 1 && lanes <= 32 && (lanes & (lanes - 1)) == 0,
                    "group_size must be a power of two from ", elems_per_thread, " to ", 32 * elems_per_thread,
                    ", got ", group_size);
  TORCH_CHECK_VALUE(x.size(1) % group_size == 0, "x.shape[-1] (", x.size(1), ") must be divisible by group_size (",
                    group_size, ")");
  TORCH_CHECK_VALUE(q.sizes() == x.sizes() && q.stride(1) == 1, "q must have x's shape ", x.sizes(),
                    " with a contiguous last dim");
  TORCH_CHECK_VALUE(s.dim() == 2 && s.size(0) == x.size(0) && s.size(1) == x.size(1) / group_size,
                    "s must have shape (", x.size(0), ", ", x.size(1) / group_size, "), got ", s.sizes());
  TORCH_CHECK_VALUE(s.size(0) <= 1 || s.size(1) <= 1 || s.stride(0) == 1 || s.stride(1) == 1,
                    "s must be row-major or column-major, got strides ", s.strides());
  TORCH_CHECK_VALUE(x.numel() / group_size < (int64_t(1) << 31), "x has too many groups for one launch");
  TORCH_CHECK_VALUE(eps >= 1e-20 && eps <= 1e20, "eps must be in [1e-20, 1e20], got ", eps);
}

}  // namespace qbench
