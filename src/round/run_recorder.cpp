#include "round/run_recorder.h"

#include <fmt/format.h>

#include <filesystem>

#include "core/error.h"

namespace fedsim {

std::string CheckpointPath(const std::string& dir) { return (std::filesystem::path(dir) / "checkpoint.bin").string(); }

namespace {

// Config keys a branch may not change: what the saved state's shape or
// meaning depends on (the data and its clients, the model, the algorithm and
// its state, the privacy mode the ledger accounts; the event-driven mode,
// whose held uploads are updates under fedbuff and client models under
// fedasync, and its number of slots, which the saved events imply).
constexpr const char* kFrozenKeys[] = {"data",
                                       "model",
                                       "experiment.seed",
                                       "algorithm.name",
                                       "algorithm.mode",
                                       "async.concurrency",
                                       "algorithm.state_precision",
                                       "algorithm.fedpara_gamma",
                                       "privacy.mode",
                                       "privacy.input_perturbation",
                                       "baseline.kind",
                                       "baseline.workers",
                                       "gan",
                                       // the personal vectors' length (fedper, fedrep, lgfedavg)
                                       "personalization.personal_layers",
                                       // FedSparse's mask and server residual
                                       "algorithm.sparse_download",
                                       "algorithm.model_density"};

// Local and sample DP price each client's spent rounds (or steps) at the
// current noise when ε is recomputed from the saved counts, so a branch that
// changed the noise would re-price the parent's rounds instead of adding to
// them. Central DP keeps its accountant's RDP and may change them.
constexpr const char* kFrozenPerClientDp[] = {"privacy.noise_multiplier", "privacy.clip_norm", "privacy.mechanism",
                                              "privacy.delta", "algorithm.batch_size"};

bool IsKey(const std::string& path, const std::string& key) { return path == key || path.rfind(key + ".", 0) == 0; }

bool Frozen(const std::string& path, const nlohmann::json& saved_config) {
  for (const char* k : kFrozenKeys) {
    if (IsKey(path, k)) return true;
  }
  const nlohmann::json::json_pointer mode_at("/privacy/mode");
  const bool per_client_dp = saved_config.contains(mode_at) && saved_config[mode_at].is_string() &&
                             (saved_config[mode_at] == "local" || saved_config[mode_at] == "sample");
  if (per_client_dp) {
    for (const char* k : kFrozenPerClientDp) {
      if (IsKey(path, k)) return true;
    }
  }
  return false;
}

// The leaf paths where two resolved configs differ, in key order.
void Differences(const nlohmann::json& a, const nlohmann::json& b, const std::string& path,
                 std::vector<std::string>& out) {
  if (a.is_object() && b.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      const std::string sub = path.empty() ? it.key() : path + "." + it.key();
      Differences(it.value(), b.contains(it.key()) ? b[it.key()] : nlohmann::json(), sub, out);
    }
    for (auto it = b.begin(); it != b.end(); ++it) {
      if (!a.contains(it.key())) out.push_back(path.empty() ? it.key() : path + "." + it.key());
    }
  } else if (a != b) {
    out.push_back(path);
  }
}

// "a.b.c" as a JSON pointer's tail "a/b/c".
std::string Pointer(const std::string& key) {
  std::string p = key;
  for (char& c : p) {
    if (c == '.') c = '/';
  }
  return p;
}

}  // namespace

RunRecorder::RunRecorder(const Config& cfg, const RunOptions& opt, Comm& comm, SetupAgreement& setup)
    : cfg_(cfg), opt_(opt), comm_(comm), t_start_(Clock::now()) {
  if (opt.resume && opt.out_dir.empty()) throw InputError("--resume needs the run's output directory");
  if (opt.resume && !opt.branch_from.empty()) throw InputError("--from: branch a run or resume it, not both");
  // A resume reads its checkpoint before anything is rewritten.
  if (opt.resume) resume_ = ReadCheckpoint(CheckpointPath(opt.out_dir), comm, setup);
  if (!opt.branch_from.empty()) resume_ = ReadCheckpoint(opt.branch_from, comm, setup);
  // Opened first: it removes a stale metrics.json, so a rerun that fails while
  // loading data never leaves an older run's results looking current.
  if (!opt.out_dir.empty() && comm.root()) {
    std::error_code same;
    if (!opt.branch_from.empty() && std::filesystem::equivalent(opt.branch_from, CheckpointPath(opt.out_dir), same)) {
      throw InputError("--from " + opt.branch_from + ": a branch writes a new run; give it another --out");
    }
    if (!opt.resume) {
      std::error_code ec;
      std::filesystem::remove(CheckpointPath(opt.out_dir), ec);  // an earlier run's, not this one's
      std::filesystem::remove(std::filesystem::path(opt.out_dir) / "clients.jsonl", ec);
    }
    writer_ = std::make_unique<MetricsWriter>(opt.out_dir);
    writer_->WriteConfig(ToJson(cfg));
  }
}

RunRecorder::~RunRecorder() = default;

nlohmann::json RunRecorder::Restore(nlohmann::json& doc, int rounds) {
  if (!resume_) return nullptr;
  const nlohmann::json& h = resume_->header();
  const bool branch = !opt_.branch_from.empty();
  const std::string path = branch ? opt_.branch_from : CheckpointPath(opt_.out_dir);
  if (!branch) {
    CheckResumeConfig(h, doc["config"], path);
    // An interrupted branch stays one: its branch record is in the checkpoint.
    if (h.contains("branch") && h["branch"].is_object()) doc["branch"] = h["branch"];
  } else {
    if (!h.contains("config") || !h["config"].is_object()) throw InputError(path + ": checkpoint has no config");
    std::vector<std::string> changed;
    Differences(h["config"], doc["config"], "", changed);
    for (const std::string& key : changed) {
      if (Frozen(key, h["config"])) {
        const nlohmann::json::json_pointer at("/" + Pointer(key));
        auto show = [&](const nlohmann::json& c) { return c.contains(at) ? c[at].dump() : std::string("nothing"); };
        throw InputError(fmt::format("--from {}: {} cannot change in a branch (the saved state depends on it): the "
                                     "checkpoint has {}, this config {}",
                                     path, key, show(h["config"]), show(doc["config"])));
      }
    }
    doc["branch"] = {{"from", path}, {"round", h.value("totals", nlohmann::json::object()).value("next_round", 0)},
                     {"changed", changed}};
  }
  if (!h.contains("totals") || !h["totals"].is_object() || !h["totals"].contains("next_round") ||
      !h["totals"]["next_round"].is_number_integer()) {
    throw InputError(fmt::format("{}: checkpoint totals are damaged", path));
  }
  const nlohmann::json totals = h["totals"];
  doc["rounds"] = SavedRounds(h, totals["next_round"].get<int>(), rounds, path);
  if (writer_) {
    for (const auto& rec : doc["rounds"]) writer_->AppendRound(rec);
  }
  return totals;
}

void RunRecorder::StartLoop(const nlohmann::json& totals) {
  resume_.reset();
  t_loop_ = Clock::now();
  setup_seconds_ = std::chrono::duration<double>(t_loop_ - t_start_).count();
  wall_before_ = totals.is_object() && totals.contains("wall_seconds") ? totals["wall_seconds"].get<double>() : 0.0;
}

double RunRecorder::WallSeconds() const {
  return wall_before_ + std::chrono::duration<double>(Clock::now() - t_loop_).count();
}

void RunRecorder::Append(nlohmann::json& doc, const nlohmann::json& rec, int rounds) {
  if (writer_) writer_->AppendRound(rec);
  doc["rounds"].push_back(rec);
  if (opt_.on_round && comm_.root()) opt_.on_round(rec, rounds);
}

bool RunRecorder::Next(int round, int rounds, std::string& status, int signal, const nlohmann::json& doc,
                       const SaveFn& save) {
  if (status == "diverged") {
    diverged_round_ = round;
    return false;
  }
  if (round >= rounds) return false;
  if (signal != 0 || (opt_.stop_after_round > 0 && round >= opt_.stop_after_round)) {
    status = "interrupted";
    signal_ = signal;
    return false;
  }
  if (cfg_.experiment.checkpoint_every > 0 && round % cfg_.experiment.checkpoint_every == 0) Checkpoint(doc, save);
  return true;
}

void RunRecorder::Close(const std::string& status, const nlohmann::json& doc, const SaveFn& save) {
  if (status != "diverged") Checkpoint(doc, save);
}

void RunRecorder::Checkpoint(const nlohmann::json& doc, const SaveFn& save) {
  // Collective in a distributed run (client state is gathered on rank 0).
  if (opt_.out_dir.empty()) return;
  nlohmann::json totals = save.totals();
  totals["wall_seconds"] = WallSeconds();
  // Streamed to the file as it is built (rank 0; other ranks write nothing).
  nlohmann::json header{
      {"fedsim_version", FEDSIM_VERSION}, {"config", doc["config"]}, {"totals", totals}, {"rounds", doc["rounds"]}};
  if (doc.contains("branch")) header["branch"] = doc["branch"];
  CheckpointWriter w(header, writer_ ? CheckpointPath(opt_.out_dir) : std::string());
  save.state(w);
  w.Commit();
}

nlohmann::json RunRecorder::SummaryHead(const std::string& status, int rounds, int completed) const {
  return {{"status", status},
          {"rounds", rounds},
          {"rounds_completed", completed},
          {"diverged_round", diverged_round_},
          {"signal", signal_ ? nlohmann::json(signal_) : nlohmann::json(nullptr)}};
}

void RunRecorder::Finish(const nlohmann::json& doc) {
  if (writer_) writer_->WriteFinal(doc);
}

}  // namespace fedsim
