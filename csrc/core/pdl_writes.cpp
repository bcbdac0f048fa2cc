#include "core/pdl_writes.h"

#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace qbench {
namespace {

struct ByteRange {
  uintptr_t begin = 0, end = 0;  // [begin, end); empty when begin == end
};

// From the first to one past the last byte an element of t occupies.
ByteRange bytes_of(const at::Tensor& t) {
  if (t.numel() == 0) return {};
  int64_t lowest = 0, highest = 0;  // element offsets from data_ptr
  for (int64_t d = 0; d < t.dim(); ++d) {
    const int64_t reach = (t.size(d) - 1) * t.stride(d);
    (reach < 0 ? lowest : highest) += reach;
  }
  const auto base = reinterpret_cast<uintptr_t>(t.data_ptr());
  const int64_t item = static_cast<int64_t>(t.element_size());
  return {base + lowest * item, base + (highest + 1) * item};
}

std::mutex records_mutex;
std::unordered_map<cudaStream_t, std::vector<ByteRange>> records;

}  // namespace

void note_pdl_writes(cudaStream_t stream, std::initializer_list<const at::Tensor*> written) {
  std::vector<ByteRange> ranges;
  for (const at::Tensor* t : written) {
    const ByteRange r = bytes_of(*t);
    if (r.begin != r.end) ranges.push_back(r);
  }
  const std::lock_guard<std::mutex> lock(records_mutex);
  if (ranges.empty()) {
    records.erase(stream);
  } else {
    records[stream] = std::move(ranges);
  }
}

bool overlaps_pdl_writes(cudaStream_t stream, const at::Tensor& t) {
  const ByteRange r = bytes_of(t);
  if (r.begin == r.end) return false;
  const std::lock_guard<std::mutex> lock(records_mutex);
  const auto it = records.find(stream);
  if (it == records.end()) return false;
  for (const ByteRange& w : it->second) {
    if (r.begin < w.end && w.begin < r.end) return true;
  }
  return false;
}

}  // namespace qbench
