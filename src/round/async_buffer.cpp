#include "round/async_buffer.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "fl/checkpoint.h"

namespace fedsim {
namespace {

// Columns handed to the aggregator at once.
constexpr int kApplyBlock = 64;

}  // namespace

void AsyncUploads::AddBlock(const Eigen::MatrixXf& uploads, int b0, int nb, const std::vector<ClientReport>& reports,
                            const std::vector<char>& keep) {
  for (int i = 0; i < nb; ++i) {
    const size_t at = static_cast<size_t>(b0 + i);
    Held& h = held_[wave_[at]];
    h.upload = uploads.col(i).head(upload_size_);
    if (keep_models_) h.upload += *global_;
    h.report = reports[at];
    h.keep = keep[at] != 0;
  }
}

int64_t AsyncUploads::Discard(int64_t seq) {
  auto it = held_.find(seq);
  if (it == held_.end()) return 0;
  const ClientReport& r = it->second.report;
  const int64_t bytes = r.bytes_up >= 0 ? r.bytes_up : upload_size_ * static_cast<int64_t>(sizeof(float));
  held_.erase(it);
  return bytes;
}

AggregateResult AsyncUploads::Apply(const std::vector<AsyncArrival>& buffer, const AsyncConfig& cfg, bool fedasync,
                                    const Eigen::VectorXf& global, Aggregator& aggregator, int round,
                                    std::vector<ClientReport>& reports, std::vector<char>& keep) {
  const int k = static_cast<int>(buffer.size());
  reports.assign(buffer.size(), ClientReport());
  keep.assign(buffer.size(), 0);
  skipped_ = 0;
  aggregator.Begin(round, k);
  Eigen::MatrixXf block(upload_size_, std::min(k, kApplyBlock));
  for (int b0 = 0; b0 < k; b0 += kApplyBlock) {
    const int nb = std::min(kApplyBlock, k - b0);
    for (int i = 0; i < nb; ++i) {
      const size_t at = static_cast<size_t>(b0 + i);
      auto it = held_.find(buffer[at].dispatch.seq);
      if (it == held_.end()) {
        throw RunError(fmt::format("async: the update of dispatch {} (client {}) arrived but was never trained",
                                   buffer[at].dispatch.seq, buffer[at].dispatch.client));
      }
      Held& h = it->second;
      const double s = StalenessWeight(cfg, buffer[at].staleness);
      if (fedasync) {
        block.col(i) = static_cast<float>(cfg.alpha * s) * (h.upload - global);
      } else {
        block.col(i) = static_cast<float>(s) * h.upload;
      }
      reports[at] = h.report;
      if (UniformWeights(cfg, fedasync)) reports[at].weight = 1.0;
      keep[at] = h.keep ? 1 : 0;
      skipped_ += h.keep ? 0 : 1;
      held_.erase(it);
    }
    aggregator.AddBlock(block, b0, nb, reports, keep);
  }
  return aggregator.Finish(reports, keep);
}

nlohmann::json ReportToJson(const ClientReport& r) {
  return nlohmann::json::array({r.weight, r.loss_sum, r.samples, r.steps, r.bytes_up, r.norm_a, r.update_norm,
                                r.raw_bytes_up, r.aux_loss_sum, r.start_loss, r.client, r.extra_samples,
                                r.extra_steps});
}

ClientReport ReportFromJson(const nlohmann::json& j) {
  ClientReport r;
  r.weight = j.at(0).get<double>();
  r.loss_sum = j.at(1).get<double>();
  r.samples = j.at(2).get<int64_t>();
  r.steps = j.at(3).get<int64_t>();
  r.bytes_up = j.at(4).get<int64_t>();
  r.norm_a = j.at(5).get<double>();
  r.update_norm = j.at(6).get<double>();
  r.raw_bytes_up = j.at(7).get<int64_t>();
  r.aux_loss_sum = j.at(8).get<double>();
  r.start_loss = j.at(9).get<double>();
  r.client = j.at(10).get<int>();
  r.extra_samples = j.at(11).get<int64_t>();
  r.extra_steps = j.at(12).get<int64_t>();
  return r;
}

void AsyncUploads::Save(CheckpointWriter& w) const {
  w.Begin("async/uploads", 1, static_cast<int64_t>(held_.size()) * upload_size_);
  for (const auto& [seq, h] : held_) w.Append(h.upload.data(), upload_size_);
}

void AsyncUploads::Load(const CheckpointReader& r) {
  const int64_t n = static_cast<int64_t>(loaded_order_.size());
  if (r.Count("async/uploads") != n * upload_size_) {
    throw InputError(fmt::format("checkpoint: async/uploads holds {} floats, expected {} uploads of {}",
                                 r.Count("async/uploads"), n, upload_size_));
  }
  for (int64_t i = 0; i < n; ++i) {
    Held& h = held_.at(loaded_order_[static_cast<size_t>(i)]);
    h.upload.resize(upload_size_);
    r.ReadFloats("async/uploads", i * upload_size_, upload_size_, h.upload.data());
  }
}

nlohmann::json AsyncUploads::SaveReports() const {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& [seq, h] : held_) j.push_back({seq, h.keep, ReportToJson(h.report)});
  return j;
}

void AsyncUploads::LoadReports(const nlohmann::json& j) {
  held_.clear();
  loaded_order_.clear();
  for (const auto& e : j) {
    const int64_t seq = e.at(0).get<int64_t>();
    Held& h = held_[seq];
    h.keep = e.at(1).get<bool>();
    h.report = ReportFromJson(e.at(2));
    loaded_order_.push_back(seq);
  }
}

}  // namespace fedsim
