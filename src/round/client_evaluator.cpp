#include "round/client_evaluator.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "metrics/writer.h"
#include "round/cohort_sampler.h"

namespace fedsim {

using nlohmann::json;

namespace {

// Linear interpolation between order statistics (numpy's default), on sorted v.
double Quantile(const std::vector<double>& v, double q) {
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

// The summary of per-client values v (one per client with test samples);
// weighted = the sample-weighted mean. higher_is_better orders worst/best.
json Summarize(std::vector<double> v, double weighted, bool higher_is_better, bool jain) {
  if (v.empty()) return nullptr;
  const size_t n = v.size();
  const auto non_finite = std::count_if(v.begin(), v.end(), [](double a) { return !std::isfinite(a); });
  if (non_finite > 0) {
    // A diverged client's NaN has no place in an order (and would make the
    // sort undefined): every statistic is null, and non_finite counts them.
    json s = Summarize({0.0}, 0.0, higher_is_better, jain);
    for (auto& [key, value] : s.items()) value = nullptr;
    s["clients"] = n;
    s["non_finite"] = non_finite;
    return s;
  }
  std::sort(v.begin(), v.end());
  double sum = 0.0, sq = 0.0;
  for (double a : v) {
    sum += a;
    sq += a * a;
  }
  const double mean = sum / static_cast<double>(n);
  double var = 0.0;
  for (double a : v) var += (a - mean) * (a - mean);
  var /= static_cast<double>(n);
  const size_t tenth = (n + 9) / 10;  // ceil(n / 10) >= 1
  double low = 0.0, high = 0.0;
  for (size_t i = 0; i < tenth; ++i) {
    low += v[i];
    high += v[n - 1 - i];
  }
  low /= static_cast<double>(tenth);
  high /= static_cast<double>(tenth);
  json s = {{"clients", n},
            {"weighted_mean", NullableNumber(weighted)},
            {"mean", NullableNumber(mean)},
            {"std", NullableNumber(std::sqrt(var))},
            {"variance", NullableNumber(var)},
            {"min", NullableNumber(v.front())},
            {"p10", NullableNumber(Quantile(v, 0.1))},
            {"p50", NullableNumber(Quantile(v, 0.5))},
            {"p90", NullableNumber(Quantile(v, 0.9))},
            {"max", NullableNumber(v.back())},
            {"worst10", NullableNumber(higher_is_better ? low : high)},
            {"best10", NullableNumber(higher_is_better ? high : low)}};
  if (jain) s["jain"] = sq > 0.0 ? NullableNumber(sum * sum / (static_cast<double>(n) * sq)) : json(nullptr);
  return s;
}

std::string ScoreLine(int round, const ClientScore& c, bool holdout) {
  const double n = static_cast<double>(c.samples);
  json line = {{"round", round},
               {"client", c.client},
               {"holdout", holdout},
               {"test_samples", c.samples},
               {"correct", c.correct},
               {"loss", NullableNumber(c.loss_sum / n)},
               {"accuracy", NullableNumber(static_cast<double>(c.correct) / n)}};
  return line.dump() + "\n";
}

// Writes all of `text` to fd (one write(2) when the kernel takes it whole).
void WriteAll(int fd, const std::string& text, const std::string& path) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw RunError(fmt::format("{}: write failed: {}", path, n < 0 ? std::strerror(errno) : "no progress"));
    done += static_cast<size_t>(n);
  }
}

}  // namespace

json SummarizeClientAccuracy(const std::vector<ClientScore>& scores) {
  std::vector<double> acc;
  int64_t correct = 0, samples = 0;
  for (const ClientScore& c : scores) {
    if (c.samples == 0) continue;
    acc.push_back(static_cast<double>(c.correct) / static_cast<double>(c.samples));
    correct += c.correct;
    samples += c.samples;
  }
  return Summarize(std::move(acc), samples ? static_cast<double>(correct) / static_cast<double>(samples) : NAN,
                   true, true);
}

json SummarizeClientLoss(const std::vector<ClientScore>& scores) {
  std::vector<double> loss;
  double sum = 0.0;
  int64_t samples = 0;
  for (const ClientScore& c : scores) {
    if (c.samples == 0) continue;
    loss.push_back(c.loss_sum / static_cast<double>(c.samples));
    sum += c.loss_sum;
    samples += c.samples;
  }
  return Summarize(std::move(loss), samples ? sum / static_cast<double>(samples) : NAN, false, false);
}

ClientEvaluator::ClientEvaluator(const Config& cfg, ClientTrainer& trainer, const FederatedData& data,
                                 const ClientTests& tests, std::vector<int> holdout, Comm& comm, int threads,
                                 const std::string& out_dir, int resume_round)
    : cfg_(cfg),
      trainer_(trainer),
      rows_of_(tests.from_train ? data.train : data.test),
      tests_(tests),
      holdout_(std::move(holdout)),
      comm_(comm),
      threads_(threads) {
  const int n = static_cast<int>(tests.rows.size());
  is_holdout_.assign(static_cast<size_t>(n), 0);
  for (int c : holdout_) is_holdout_[static_cast<size_t>(c)] = 1;
  pool_ = TrainingClients(holdout_, n);
  int64_t with_tests = 0;
  for (const auto& r : tests.rows) with_tests += r.empty() ? 0 : 1;
  if (with_tests == 0) {
    throw InputError(
        "metrics.client_eval: no client has test rows of its own; set data.client_test_fraction (e.g. 0.25) or "
        "use data with per-client test files (leaf, tff_h5, a natural partition of data whose test rows name their "
        "user)");
  }
  if (!out_dir.empty() && comm.root()) {
    path_ = (std::filesystem::path(out_dir) / "clients.jsonl").string();
    std::string kept;
    if (resume_round >= 0) {
      // A resumed run keeps the lines up to its checkpoint's round.
      std::ifstream in(path_);
      for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        const json j = json::parse(line, nullptr, false);
        if (j.is_object() && j.contains("round") && j["round"].is_number_integer() &&
            j["round"].get<int>() <= resume_round) {
          kept += line + "\n";
        }
      }
    }
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) throw RunError(fmt::format("{}: cannot write: {}", path_, std::strerror(errno)));
    WriteAll(fd_, kept, path_);
  }
}

ClientEvaluator::~ClientEvaluator() {
  if (fd_ >= 0) ::close(fd_);
}

std::vector<int> ClientEvaluator::Selected(int round, const std::vector<int>& cohort) const {
  std::vector<int> out;
  const std::string& mode = cfg_.metrics.client_eval;
  if (mode == "all") {
    out = pool_;
  } else if (mode == "participants") {
    out = cohort;
  } else if (mode == "sample") {
    const int n = static_cast<int>(pool_.size());
    const int k = std::clamp(static_cast<int>(std::lround(cfg_.metrics.client_eval_fraction * n)), 1, n);
    Rng rng = DeriveStream(cfg_.experiment.seed, Stream::kClientEval, static_cast<uint64_t>(round));
    for (int i : SampleCohort(n, k, rng)) out.push_back(pool_[static_cast<size_t>(i)]);
  }
  out.insert(out.end(), holdout_.begin(), holdout_.end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  // Only clients with test rows are scored.
  out.erase(std::remove_if(out.begin(), out.end(),
                           [&](int c) { return tests_.rows[static_cast<size_t>(c)].empty(); }),
            out.end());
  return out;
}

void ClientEvaluator::Evaluate(int round, const std::vector<int>& cohort, const Eigen::VectorXf& global) {
  const std::vector<int> selected = Selected(round, cohort);
  // This process's clients (where their state lives).
  std::vector<int> mine;
  const int ranks = comm_.size(), rank = comm_.rank();
  for (int c : selected) {
    if (c % ranks == rank) mine.push_back(c);
  }
  std::vector<ClientScore> scores(mine.size());
  ParallelFor(static_cast<int64_t>(mine.size()), threads_, [&](int64_t i, int tid) {
    const int c = mine[static_cast<size_t>(i)];
    const EvalSums e = trainer_.EvaluateClient(round - 1, c, global.data(), rows_of_,
                                               tests_.rows[static_cast<size_t>(c)], tid);
    scores[static_cast<size_t>(i)] = {c, e.count, e.correct, e.loss_sum};
  });
  std::string bytes(reinterpret_cast<const char*>(scores.data()), scores.size() * sizeof(ClientScore));
  const std::vector<std::string> parts = comm_.Gather(bytes, 0);
  if (!comm_.root()) return;
  std::vector<ClientScore> all;
  for (const std::string& p : parts) {
    const size_t k = p.size() / sizeof(ClientScore);
    const size_t at = all.size();
    all.resize(at + k);
    std::memcpy(all.data() + at, p.data(), k * sizeof(ClientScore));
  }
  std::sort(all.begin(), all.end(), [](const ClientScore& a, const ClientScore& b) { return a.client < b.client; });
  std::vector<ClientScore> train, held;
  std::string lines;
  for (const ClientScore& c : all) {
    const bool h = is_holdout_[static_cast<size_t>(c.client)] != 0;
    (h ? held : train).push_back(c);
    if (fd_ >= 0) lines += ScoreLine(round, c, h);
  }
  if (fd_ >= 0) WriteAll(fd_, lines, path_);
  last_ = json::object();
  last_["client_accuracy"] = SummarizeClientAccuracy(train);
  last_["client_loss"] = SummarizeClientLoss(train);
  if (!holdout_.empty()) {
    last_["holdout_client_accuracy"] = SummarizeClientAccuracy(held);
    last_["holdout_client_loss"] = SummarizeClientLoss(held);
    const json& a = last_["client_accuracy"];
    const json& b = last_["holdout_client_accuracy"];
    last_["participation_gap"] =
        a.is_object() && b.is_object() && a["weighted_mean"].is_number() && b["weighted_mean"].is_number()
            ? json(a["weighted_mean"].get<double>() - b["weighted_mean"].get<double>())
            : json(nullptr);
  }
  final_ = last_;
}

void ClientEvaluator::Record(json& rec, bool evaluated) const {
  for (const char* k : {"client_accuracy", "client_loss"}) rec[k] = evaluated ? last_.value(k, json()) : json();
  if (!holdout_.empty()) {
    for (const char* k : {"holdout_client_accuracy", "holdout_client_loss", "participation_gap"}) {
      rec[k] = evaluated ? last_.value(k, json()) : json();
    }
  }
}

void ClientEvaluator::Summarize(json& s) const {
  s["final_client_accuracy"] = final_.value("client_accuracy", json());
  s["final_client_loss"] = final_.value("client_loss", json());
  if (!holdout_.empty()) {
    s["final_holdout_client_accuracy"] = final_.value("holdout_client_accuracy", json());
    s["final_participation_gap"] = final_.value("participation_gap", json());
  }
}

void ClientEvaluator::SaveTotals(json& t) const { t["client_eval_final"] = final_; }

void ClientEvaluator::LoadTotals(const json& t) {
  // A branch that switches per-client evaluation on starts without figures.
  if (t.contains("client_eval_final") && t["client_eval_final"].is_object()) final_ = t["client_eval_final"];
}

json ClientEvaluator::Describe() const {
  int64_t with_tests = 0, rows = 0;
  for (const auto& r : tests_.rows) {
    with_tests += r.empty() ? 0 : 1;
    rows += static_cast<int64_t>(r.size());
  }
  return {{"client_eval", cfg_.metrics.client_eval},
          {"client_eval_fraction", cfg_.metrics.client_eval == "sample" ? json(cfg_.metrics.client_eval_fraction)
                                                                        : json(nullptr)},
          {"personalized", trainer_.personalized()},
          {"finetune_steps", cfg_.personalization.finetune_steps},
          {"clients_with_tests", with_tests},
          {"test_rows", rows},
          {"test_rows_from", tests_.from_train ? "train" : "test"},
          {"holdout", holdout_.size()},
          {"holdout_clients", holdout_}};
}

}  // namespace fedsim
