#pragma once
#include <cuda_runtime_api.h>

#define QBENCH_STRINGIFY_(x) #x
#define QBENCH_STRINGIFY(x) QBENCH_STRINGIFY_(x)

namespace qbench {

// How this library was built, as JSON, fixed at compile time.
inline constexpr const char* kBuildInfoJson =
    "{\"cuda_runtime_version\": " QBENCH_STRINGIFY(CUDART_VERSION) ", \"cuda_archs\": \"" QBENCH_CUDA_ARCHS
    "\", \"torch_version\": \"" QBENCH_TORCH_VERSION "\", \"cutlass_version\": \"" QBENCH_CUTLASS_VERSION
    "\", \"build_type\": \"" QBENCH_BUILD_TYPE "\"}";

}  // namespace qbench
