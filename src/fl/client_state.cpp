#include "fl/algorithm.h"

namespace fedsim {

int64_t ClientStateStore::ClientsWithState() const {
  int64_t n = 0;
  for (size_t c = 0; slots_ > 0 && c < state_.size(); c += static_cast<size_t>(slots_)) {
    for (int s = 0; s < slots_; ++s) {
      if (state_[c + static_cast<size_t>(s)].size() > 0) {
        ++n;
        break;
      }
    }
  }
  return n;
}

int64_t ClientStateStore::Bytes() const {
  int64_t b = 0;
  for (const auto& v : state_) b += v.size() * static_cast<int64_t>(sizeof(float));
  return b;
}

}  // namespace fedsim
