#include "fl/algorithm.h"

#include "core/error.h"

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

void ClientStateStore::Save(CheckpointWriter& w, const std::string& prefix) const {
  for (int s = 0; s < slots_; ++s) {
    std::vector<int64_t> ids;
    std::vector<float> data;
    for (size_t c = 0; c * static_cast<size_t>(slots_) < state_.size(); ++c) {
      const Eigen::VectorXf& v = state_[c * static_cast<size_t>(slots_) + static_cast<size_t>(s)];
      if (v.size() == 0) continue;
      ids.push_back(static_cast<int64_t>(c));
      ids.push_back(v.size());
      data.insert(data.end(), v.data(), v.data() + v.size());
    }
    w.I64(prefix + "/" + std::to_string(s) + "/ids", ids);
    w.F32(prefix + "/" + std::to_string(s) + "/data", data.data(), static_cast<int64_t>(data.size()));
  }
}

void ClientStateStore::Load(const CheckpointReader& r, const std::string& prefix) {
  for (int s = 0; s < slots_; ++s) {
    const std::vector<int64_t> ids = r.I64(prefix + "/" + std::to_string(s) + "/ids");
    const Eigen::VectorXf data = r.F32(prefix + "/" + std::to_string(s) + "/data");
    int64_t pos = 0;
    for (size_t i = 0; i + 1 < ids.size(); i += 2) {
      const int64_t client = ids[i], n = ids[i + 1];
      if (client < 0 || static_cast<size_t>(client) * static_cast<size_t>(slots_) >= state_.size() || n < 0 ||
          pos + n > data.size()) {
        throw InputError("checkpoint: client state '" + prefix + "' does not fit this run's population");
      }
      state_[static_cast<size_t>(client) * static_cast<size_t>(slots_) + static_cast<size_t>(s)] = data.segment(pos, n);
      pos += n;
    }
  }
}

int64_t ClientStateStore::Bytes() const {
  int64_t b = 0;
  for (const auto& v : state_) b += v.size() * static_cast<int64_t>(sizeof(float));
  return b;
}

}  // namespace fedsim
