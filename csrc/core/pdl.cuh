#pragma once
// Programmatic dependent launch (PDL, sm90): a kernel launched this way may be scheduled while
// the kernel before it in the stream is still finishing, so its launch latency and prologue
// (index math, parameter loads) overlap that kernel's tail. In exchange it must not touch
// memory the previous kernel may write before pdl_wait(). Short kernels (decode-size
// quantization and GEMMs) spend a large part of their time in that latency.
#include <cuda_runtime.h>

#include <utility>

namespace qbench {

// Waits until the previous kernel in the stream has completed and its writes are visible,
// then lets the next PDL kernel be scheduled (it will wait for this one in turn). In this
// order, so that a kernel that starts early overlaps only the one kernel ahead of it, which
// core/pdl_writes.h relies on.
__device__ __forceinline__ void pdl_wait() {
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;");
}

// kernel<<<grid, block, shared_bytes, stream>>>(args...), with programmatic stream serialization.
template <typename... Params, typename... Args>
cudaError_t launch_with_pdl_shared(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
                                   cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  config.attrs = &attribute;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

// kernel<<<grid, block, 0, stream>>>(args...), with programmatic stream serialization.
template <typename... Params, typename... Args>
cudaError_t launch_with_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream, Args&&... args) {
  return launch_with_pdl_shared(kernel, grid, block, 0, stream, std::forward<Args>(args)...);
}

}  // namespace qbench
