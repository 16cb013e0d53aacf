#include "fl/cohort_exchange.h"

#include <cstring>
#include <type_traits>

namespace fedsim {

const std::vector<int>& CohortExchange::Plan(const std::vector<int>& cohort, size_t b0, int nb) {
  const int ranks = comm_.size();
  mine_.clear();
  mine_flag_.assign(static_cast<size_t>(nb), 0);
  where_.assign(static_cast<size_t>(ranks), {});
  for (int i = 0; i < nb; ++i) {
    const int owner = (by_client_ ? cohort[b0 + static_cast<size_t>(i)] : i) % ranks;
    where_[static_cast<size_t>(owner)].push_back(i);
    if (owner == comm_.rank()) {
      mine_.push_back(i);
      mine_flag_[static_cast<size_t>(i)] = 1;
    }
  }
  if (!root() && local_.cols() < static_cast<int64_t>(mine_.size())) {
    local_.resize(upload_size_, static_cast<int64_t>(mine_.size()));
  }
  return mine_;
}

void CohortExchange::Gather(Eigen::MatrixXf& uploads, ClientReport* reports, char* keep) {
  if (comm_.size() == 1) return;
  static_assert(std::is_trivially_copyable<MemberResult>::value, "sent as bytes");
  std::string packed;
  if (!root()) {
    packed.resize(mine_.size() * sizeof(MemberResult));
    for (size_t k = 0; k < mine_.size(); ++k) {
      const int i = mine_[k];
      const MemberResult m{reports[i], keep[i]};
      std::memcpy(packed.data() + k * sizeof(MemberResult), &m, sizeof(m));
    }
    sent_ += static_cast<int64_t>(packed.size()) +
             static_cast<int64_t>(mine_.size()) * upload_size_ * static_cast<int64_t>(sizeof(float));
  }
  const std::vector<std::string> parts = comm_.Gather(packed, 0);
  comm_.GatherColumns(local_.data(), upload_size_, uploads.data(), where_);
  if (!root()) return;
  for (int r = 1; r < comm_.size(); ++r) {
    const auto& pos = where_[static_cast<size_t>(r)];
    const std::string& part = parts[static_cast<size_t>(r)];
    for (size_t k = 0; k < pos.size(); ++k) {
      MemberResult m;
      std::memcpy(&m, part.data() + k * sizeof(MemberResult), sizeof(m));
      reports[pos[k]] = m.report;
      keep[pos[k]] = static_cast<char>(m.keep);
    }
    received_ += static_cast<int64_t>(part.size()) +
                 static_cast<int64_t>(pos.size()) * upload_size_ * static_cast<int64_t>(sizeof(float));
  }
}

void CohortExchange::ShareServerInput(bool& apply, Eigen::VectorXf& mean_upload, std::vector<ClientReport>& kept) {
  if (comm_.size() == 1) return;
  int flag = apply ? 1 : 0;
  BroadcastValue(comm_, flag);
  apply = flag != 0;
  if (!apply) return;
  if (!root()) mean_upload.resize(upload_size_);
  comm_.Broadcast(mean_upload.data(), upload_size_ * static_cast<int64_t>(sizeof(float)), 0);
  BroadcastVector(comm_, kept);
  const int64_t bytes = upload_size_ * static_cast<int64_t>(sizeof(float)) +
                        static_cast<int64_t>(kept.size() * sizeof(ClientReport));
  if (root()) {
    sent_ += bytes * (comm_.size() - 1);
  } else {
    received_ += bytes;
  }
}

void CohortExchange::EndRound(std::string& status, int& signal) {
  if (comm_.size() == 1) return;
  int v[2] = {root() && status == "diverged" ? 1 : 0, signal};
  comm_.AllMax(v, 2);
  if (v[0]) status = "diverged";
  signal = v[1];
}

int64_t CohortExchange::Sum(int64_t v) {
  comm_.AllSum(&v, 1);
  return v;
}

}  // namespace fedsim
