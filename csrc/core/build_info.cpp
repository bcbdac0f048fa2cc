#include "core/build_info.h"

#include <cuda_runtime_api.h>

#include <sstream>

namespace qbench {

std::string build_info_json() {
  std::ostringstream os;
  os << "{\"cuda_version\": \"" << CUDART_VERSION / 1000 << "." << (CUDART_VERSION % 1000) / 10
     << "\", \"cuda_archs\": \"" << QBENCH_CUDA_ARCHS << "\", \"torch_version\": \""
     << QBENCH_TORCH_VERSION << "\", \"cutlass_version\": \"" << QBENCH_CUTLASS_VERSION
     << "\", \"build_type\": \"" << QBENCH_BUILD_TYPE << "\"}";
  return os.str();
}

}  // namespace qbench
