#pragma once
#include <string>

namespace qbench {
std::string build_info_json();
}  // namespace qbench
